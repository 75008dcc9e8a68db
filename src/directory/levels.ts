import type { DirectoryConfig } from '../config/types.js';
import { DEFAULT_LEVELS } from '../config/defaults.js';

/**
 * From the AAF attributes kept for a person to what filtering needs (role, level, classes), and
 * from that to a profile. Pure functions: the import, the gate and `vigie check --user` share them.
 */

export type UserRole = 'pupil' | 'teacher' | 'staff' | 'direction';

/** What the directory knows of a person, without their name. */
export interface DirectoryUser {
  /** The AAF identifier: pseudonymous, unique within the academy. */
  id: string;
  login: string | null;
  /** The establishment's UAI. */
  uai: string | null;
  role: UserRole;
  /** `6e`..`3e`, `PS`..`CM2`, `CYCLE1`..`CYCLE3`, or null when the export gives none we know. */
  level: string | null;
  /** `<structure>$<class>` as the AAF writes them. */
  classes: string[];
}

/** MEF codes of collège classes: their first three digits give the year. */
const MEF_LEVELS: Record<string, string> = { '100': '6e', '101': '5e', '102': '4e', '103': '3e' };

const FIRST_DEGREE = ['PS', 'MS', 'GS', 'CP', 'CE1', 'CE2', 'CM1', 'CM2'];

/** `ENTEleveNiveau` as exports write it ("CM1", "cm 1", "6EME", "6e") → a level, or null. */
export function normaliseLevel(raw: string): string | null {
  const v = raw.normalize('NFD').replace(/[\u0300-\u036f]/g, '').toUpperCase().replace(/[\s_.-]+/g, '');
  if (FIRST_DEGREE.includes(v)) return v;
  const college = /^([3-6])(E|EME|IEME)$/.exec(v);
  if (college) return `${college[1]}e`;
  const cycle = /^(?:CYCLE|C)([1-3])$/.exec(v);
  if (cycle) return `CYCLE${cycle[1]}`;
  return null;
}

/** The level of a pupil: MEF (2nd degree), else ENTEleveNiveau, else ENTEleveCycle (1st degree). */
export function pupilLevel(attrs: ReadonlyMap<string, readonly string[]>): string | null {
  for (const mef of attrs.get('ENTEleveMEF') ?? []) {
    const level = MEF_LEVELS[mef.slice(0, 3)];
    if (level) return level;
  }
  for (const key of ['ENTEleveNiveau', 'ENTEleveCycle']) {
    for (const v of attrs.get(key) ?? []) {
      const level = normaliseLevel(v);
      if (level) return level;
    }
  }
  return null;
}

/**
 * The role of a PersEducNat from its functions (`<structure>$<code>$...`): DIR → direction, ENS and
 * DOC (professeur documentaliste) → teacher, anything else (EDU, ADF, SUR, MDS...) → staff. The
 * highest wins when a person has several.
 */
export function staffRole(attrs: ReadonlyMap<string, readonly string[]>): UserRole {
  let role: UserRole = 'staff';
  for (const f of attrs.get('ENTPersonFonctions') ?? []) {
    const code = (f.split('$')[1] ?? '').trim().toUpperCase();
    if (code === 'DIR') return 'direction';
    if (code === 'ENS' || code === 'DOC') role = 'teacher';
  }
  return role;
}

/** Classes as `<structure>$<class>`: ENTEleveClasses (2nd degree) or ENTPersonClasses (1st). */
export function classesOf(attrs: ReadonlyMap<string, readonly string[]>): string[] {
  const out: string[] = [];
  for (const key of ['ENTEleveClasses', 'ENTPersonClasses']) {
    for (const v of attrs.get(key) ?? []) {
      const parts = v.split('$');
      if (parts.length >= 2 && parts[0] && parts[1]) out.push(`${parts[0]}$${parts[1]}`);
    }
  }
  return [...new Set(out)];
}

/** Levels and roles → profiles: the config's entries over the defaults. */
export function levelTable(config: DirectoryConfig): Record<string, string> {
  return { ...DEFAULT_LEVELS, ...config.levels };
}

/**
 * The profile of an identified user, or null when the directory says nothing usable (the caller
 * then falls back to the client network's profile). A class override wins over the level; staff
 * map by role.
 */
export function profileForUser(user: Pick<DirectoryUser, 'role' | 'level' | 'classes'>, config: DirectoryConfig, levels = levelTable(config)): string | null {
  if (user.role !== 'pupil') return levels[user.role] ?? null;
  for (const c of user.classes) {
    const p = config.classes[c];
    if (p) return p;
  }
  return user.level ? (levels[user.level] ?? null) : null;
}
