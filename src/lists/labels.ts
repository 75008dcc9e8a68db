import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BUNDLED_UT1 } from '../paths.js';

/**
 * Category names for people, from UT1's catalogue (`global_usage`: `NAME:` starts an entry, then
 * `NAME FR:` / `NAME EN:` lines). The block page and `vigie check` show them next to the code.
 * Read when the lists load (never on a request); the table in force is swapped whole.
 */

export type LabelLang = 'fr' | 'en';
export type CategoryLabels = ReadonlyMap<string, { readonly fr?: string; readonly en?: string }>;

let current: CategoryLabels = new Map();

/** Parses a global_usage file's text. */
export function parseGlobalUsage(text: string): Map<string, { fr?: string; en?: string }> {
  const out = new Map<string, { fr?: string; en?: string }>();
  let entry: { fr?: string; en?: string } | null = null;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = /^NAME(?:\s+([A-Z]{2}))?\s*:\s*(.*)$/.exec(line);
    if (!m) continue;
    const value = m[2]!.trim();
    if (!m[1]) {
      entry = {};
      if (value) out.set(value, entry);
    } else if (entry && value && (m[1] === 'FR' || m[1] === 'EN')) entry[m[1].toLowerCase() as LabelLang] = value;
  }
  return out;
}

/** Reads `global_usage` of a UT1 folder (the bundled one's when that folder has none) and puts it in force. */
export async function loadCategoryLabels(ut1Dir: string): Promise<CategoryLabels> {
  for (const dir of [ut1Dir, BUNDLED_UT1]) {
    try {
      current = parseGlobalUsage(await readFile(join(dir, 'global_usage'), 'utf8'));
      return current;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
  }
  return current;
}

/** The category's label in `lang` (the other language, else null, when the catalogue lacks it). */
export function categoryLabel(code: string, lang: LabelLang): string | null {
  const l = current.get(code);
  return (l && (l[lang] ?? l[lang === 'fr' ? 'en' : 'fr'])) ?? null;
}

/** `Label (code)`, or the code alone when the catalogue does not know it. */
export function categoryWithLabel(code: string, lang: LabelLang): string {
  const label = categoryLabel(code, lang);
  return label ? `${label} (${code})` : code;
}
