export { Journal, journalFile, type JournalHandle, type JournalOptions, type OverflowPolicy } from './journal.js';
export { JournalQuery, CSV_COLUMNS } from './reader.js';
export { JournalWriter, type PurgeResult } from './writer.js';
export { verifyJournal, type VerifyReport, type VerifyProblem } from './verify.js';
export type { WireRow, WireEnd } from './row.js';
export * from './types.js';
