// Shared by the Chromium tests: where Debian's browser is, and what a machine without it does.
import { existsSync } from 'node:fs';
import t from 'tap';

export const CHROMIUM = process.env.VIGIE_CHROMIUM ?? '/usr/bin/chromium';

/**
 * Why a Chromium test cannot run here (a string for tap's `skip`), or false when it can. In CI a
 * missing browser is a failure, not a skip: `.ci/apt-packages` installs it.
 */
export function chromiumMissing(): string | false {
  if (existsSync(CHROMIUM)) return false;
  if (process.env.CI === 'true') throw new Error(`no browser at ${CHROMIUM}: CI installs chromium (.ci/apt-packages)`);
  return `no browser at ${CHROMIUM} (apt-get install chromium)`;
}

/** Runs a file's Chromium tests, or skips the whole file with the reason. */
export async function withChromium(what: string, run: () => Promise<void>): Promise<void> {
  const missing = chromiumMissing();
  if (missing) t.plan(0, `${missing}: ${what} skipped`);
  else await run();
}
