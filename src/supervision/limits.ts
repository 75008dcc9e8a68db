/** Request bodies: profiles, tokens and rollbacks are small. */
export const BODY_LIMIT = 1048576;
/** Replacing a whole academy list may carry tens of thousands of entries. */
export const LIST_BODY_LIMIT = 16 * 1048576;
