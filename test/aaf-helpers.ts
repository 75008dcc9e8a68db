import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import iconv from 'iconv-lite';

/**
 * Generated AAF exports (ficAlimMENESR) as the academy sends them: same elements, file names and
 * encodings, with personal attributes the import must drop (birth dates, addresses, parents).
 */

export type Encoding = 'ISO-8859-15' | 'UTF-8';

export interface AafEntry {
  op?: 'add' | 'modify' | 'delete';
  id: string;
  category?: string;
  /** Attribute → values; `modification` applies to modifyRequest entries. */
  attrs?: Record<string, string[] | { values: string[]; modification: 'add' | 'delete' | 'replace' }>;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

export function aafXml(entries: AafEntry[], encoding: Encoding = 'ISO-8859-15'): string {
  const out = [`<?xml version="1.0" encoding="${encoding}"?>`, '<ficAlimMENESR>'];
  for (const e of entries) {
    const tag = `${e.op ?? 'add'}Request`;
    out.push(`  <${tag}>`);
    if (e.category) out.push(`    <operationalAttributes><attr name="categoriePersonne"><value>${esc(e.category)}</value></attr></operationalAttributes>`);
    out.push(`    <identifier><id>${esc(e.id)}</id></identifier>`);
    if (e.attrs) {
      out.push('    <attributes>');
      for (const [name, v] of Object.entries(e.attrs)) {
        const { values, modification } = Array.isArray(v) ? { values: v, modification: null } : v;
        out.push(`      <attr name="${esc(name)}"${modification ? ` modification="${modification}"` : ''}>${values.map((x) => `<value>${esc(x)}</value>`).join('')}</attr>`);
      }
      out.push('    </attributes>');
    }
    out.push(`  </${tag}>`);
  }
  out.push('</ficAlimMENESR>', '');
  return out.join('\n');
}

export function writeAaf(dir: string, name: string, entries: AafEntry[], encoding: Encoding = 'ISO-8859-15'): string {
  const path = join(dir, name);
  writeFileSync(path, iconv.encode(aafXml(entries, encoding), encoding === 'UTF-8' ? 'utf-8' : 'iso-8859-15'));
  return path;
}

export const aafName = (uai: string, mode: 'Complet' | 'Delta', date: string, kind: string) => `ENT_${uai}_${mode}_${date}_${kind}_0000.xml`;

/** A pupil entry: MEF (2nd degree) or level (1st degree), classes, and data that must not be kept. */
export function pupil(id: string, o: { sn?: string; givenName?: string; mef?: string; niveau?: string; classes?: string[]; structure?: string; login?: string } = {}): AafEntry {
  return {
    id,
    category: 'Eleve',
    attrs: {
      ENTPersonJointure: [`AC-VERSAILLES$${id}`],
      sn: [o.sn ?? `Nom${id}`],
      givenName: [o.givenName ?? `Prénom${id}`],
      ENTPersonDateNaissance: ['14/07/2015'],
      ENTPersonAdresse: ['1 rue des Écoles'],
      ENTPersonStructRattach: [o.structure ?? '5001'],
      ...(o.mef ? { ENTEleveMEF: [o.mef] } : {}),
      ...(o.niveau ? { ENTEleveNiveau: [o.niveau] } : {}),
      ...(o.classes ? { ENTEleveClasses: o.classes } : {}),
      ...(o.login ? { ENTPersonLogin: [o.login] } : {}),
      ENTElevePere: ['9000001'],
      ENTEleveAutoriteParentale: ['9000001'],
    },
  };
}

export function staff(id: string, functions: string[], o: { sn?: string; givenName?: string; login?: string } = {}): AafEntry {
  return {
    id,
    category: 'PersEducNat',
    attrs: {
      ENTPersonJointure: [`AC-VERSAILLES$${id}`],
      sn: [o.sn ?? `Nom${id}`],
      givenName: [o.givenName ?? `Prénom${id}`],
      ENTPersonDateNaissance: ['01/02/1980'],
      ENTPersonStructRattach: ['5001'],
      ENTPersonFonctions: functions,
      ...(o.login ? { ENTPersonLogin: [o.login] } : {}),
    },
  };
}

export const parent = (id: string): AafEntry => ({
  id,
  category: 'PersRelEleve',
  attrs: { sn: ['Parent'], givenName: ['Un'], ENTPersonAdresse: ['2 rue'], ENTPersonTelPerso: ['0102030405'], mail: ['parent@example.test'] },
});

export const establishment = (jointure: string, uai: string, name = 'COLLEGE DE TEST'): AafEntry => ({
  id: jointure,
  attrs: { ENTStructureJointure: [jointure], ENTStructureUAI: [uai], ENTStructureNomCourant: [name] },
});

/** A full export for one collège: `pupils` across 6e–3e in classes of 25, and `staffCount` adults. */
export function collegeExport(dir: string, uai: string, date: string, pupils: number, staffCount: number): string[] {
  const mefs = ['10010012110', '10110001110', '10210001110', '10310019110'];
  const kids = Array.from({ length: pupils }, (_, i) => {
    const year = i % 4;
    return pupil(String(1_000_000 + i), { mef: mefs[year], classes: [`5001$${6 - year}${String.fromCharCode(65 + ((i >> 2) % Math.max(1, Math.ceil(pupils / 100))))}`], sn: `Élève${i}`, givenName: 'Zoé' });
  });
  const adults = Array.from({ length: staffCount }, (_, i) => staff(String(2_000_000 + i), [`5001$${i === 0 ? 'DIR' : i % 10 === 1 ? 'DOC' : i % 5 === 2 ? 'EDU' : 'ENS'}$LIBELLE`]));
  return [
    writeAaf(dir, aafName(uai, 'Complet', date, 'EtabEducNat'), [establishment('5001', uai)]),
    writeAaf(dir, aafName(uai, 'Complet', date, 'Eleve'), kids),
    writeAaf(dir, aafName(uai, 'Complet', date, 'PersEducNat'), adults),
  ];
}
