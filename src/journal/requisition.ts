/**
 * What a requisition export must state, for the API and the CLI alike: a reference to the legal
 * request (the audit names it), and the time range asked for, no longer than
 * `journal.maxExportDays`. An export is a copy of personal data handed out: never the whole
 * journal by default.
 */
export interface Requisition {
  reference: string | undefined;
  from: number | undefined;
  to: number | undefined;
}

export interface RequisitionProblem {
  field: 'reference' | 'from' | 'to';
  message: string;
}

const DAY = 86_400_000;

export function requisitionProblems(r: Requisition, maxDays: number): RequisitionProblem[] {
  const problems: RequisitionProblem[] = [];
  const ref = r.reference?.trim() ?? '';
  if (ref.length < 3) problems.push({ field: 'reference', message: 'the requisition reference is mandatory: at least 3 characters besides spaces' });
  else if (ref.length > 200) problems.push({ field: 'reference', message: 'the requisition reference is at most 200 characters' });
  // eslint-disable-next-line no-control-regex
  else if (/[\u0000-\u001f\u007f]/.test(ref)) problems.push({ field: 'reference', message: 'the requisition reference must not hold control characters' });
  if (r.from === undefined) problems.push({ field: 'from', message: `the start of the time range is mandatory (at most ${maxDays} days)` });
  if (r.to === undefined) problems.push({ field: 'to', message: `the end of the time range is mandatory (at most ${maxDays} days)` });
  if (r.from !== undefined && r.to !== undefined) {
    if (r.from >= r.to) problems.push({ field: 'to', message: 'the end of the time range must be after its start' });
    else if (r.to - r.from > maxDays * DAY) problems.push({ field: 'to', message: `the time range covers ${Math.ceil((r.to - r.from) / DAY)} days; at most ${maxDays} (journal.maxExportDays): ask for several exports` });
  }
  return problems;
}
