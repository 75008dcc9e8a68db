import { fileURLToPath } from 'node:url';

/** The package root: src/ and dist/ both sit one level below it. */
export const PACKAGE_ROOT = fileURLToPath(new URL('..', import.meta.url));
export const BUNDLED_UT1 = fileURLToPath(new URL('../lists/ut1', import.meta.url));
export const BUNDLED_ACADEMY = fileURLToPath(new URL('../lists/academy', import.meta.url));
export const BUNDLED_EXTRA = fileURLToPath(new URL('../lists/extra', import.meta.url));
export const BUNDLED_SAFESEARCH = fileURLToPath(new URL('../lists/safesearch.json', import.meta.url));
export const BUNDLED_INTERCEPT_EXCLUDE = fileURLToPath(new URL('../lists/interception-exclude.json', import.meta.url));
