import { readFileSync } from 'node:fs';

/**
 * The academy's watched search terms (`alerts.terms`): one term per line (a word or a few words),
 * `#` starts a comment, blank lines are skipped. Matching ignores case and accents and is by whole
 * words, so "arme" does not match "armoire" nor "alarme"; a phrase matches its words in order.
 */
export interface TermSet {
  /** Folded terms by word count: phrases[n] holds the terms of n+1 words, words joined by one space. */
  readonly phrases: readonly ReadonlySet<string>[];
  readonly size: number;
}

export const MAX_TERM_WORDS = 6;
const MAX_QUERY_CHARS = 512;

/** Lower case, accents removed (NFD then combining marks dropped), everything else a separator. */
const fold = (s: string): string => s.normalize('NFD').replace(/[\u0300-\u036f]/g, '').toLowerCase();
/** Words of a folded text: runs of letters and digits (a linear scan, no backtracking). */
const wordsOf = (s: string): string[] => fold(s).split(/[^\p{L}\p{N}]+/u).filter(Boolean);

export class TermsError extends Error {}

/** Parses a terms file's text; a line of more than MAX_TERM_WORDS words is an error naming it. */
export function parseTerms(text: string, file = '<terms>'): TermSet {
  const phrases: Set<string>[] = Array.from({ length: MAX_TERM_WORDS }, () => new Set());
  let size = 0;
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.replace(/#.*$/, '').trim();
    if (!line) return;
    const words = wordsOf(line);
    if (!words.length) return;
    if (words.length > MAX_TERM_WORDS) throw new TermsError(`${file}:${i + 1}: a term has at most ${MAX_TERM_WORDS} words`);
    const set = phrases[words.length - 1]!;
    if (!set.has(words.join(' '))) size++;
    set.add(words.join(' '));
  });
  return { phrases, size };
}

export function loadTerms(file: string): TermSet {
  return parseTerms(readFileSync(file, 'utf8'), file);
}

/**
 * The first watched term found in a search query (as the user typed it: `+` and %-escapes already
 * decoded), or null. Bounded: the first MAX_QUERY_CHARS characters, each word position tried
 * against phrases of 1..MAX_TERM_WORDS words.
 */
export function matchTerms(terms: TermSet, query: string): string | null {
  if (!terms.size) return null;
  const words = wordsOf(query.slice(0, MAX_QUERY_CHARS));
  for (let i = 0; i < words.length; i++) {
    let phrase = '';
    for (let n = 0; n < MAX_TERM_WORDS && i + n < words.length; n++) {
      phrase = n ? `${phrase} ${words[i + n]}` : words[i]!;
      if (terms.phrases[n]!.has(phrase)) return phrase;
    }
  }
  return null;
}

/** The search query of a search engine's results URL (`q`, `p` or `query` parameter), decoded; null when none. */
export function searchQueryOf(pathWithQuery: string): string | null {
  const at = pathWithQuery.indexOf('?');
  if (at < 0) return null;
  const params = new URLSearchParams(pathWithQuery.slice(at + 1, at + 1 + 4096));
  return params.get('q') ?? params.get('query') ?? params.get('p');
}
