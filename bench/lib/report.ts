// Small helpers for numbers and tables.

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(q * sorted.length)));
  return sorted[rank - 1];
}

export const mb = (bytes: number): number => Math.round((bytes / (1024 * 1024)) * 10) / 10;
export const round = (n: number, digits = 1): number => Math.round(n * 10 ** digits) / 10 ** digits;
export const int = (n: number): string => Math.round(n).toLocaleString('en-US');

/** A two-column table: label, value. */
export function table(title: string, rows: [string, string][]): string {
  const width = Math.max(...rows.map(([label]) => label.length));
  const valueWidth = Math.max(...rows.map(([, value]) => value.length));
  const rule = '─'.repeat(width + valueWidth + 5);
  const lines = [title, rule];
  for (const [label, value] of rows) lines.push(`  ${label.padEnd(width)}   ${value}`);
  lines.push(rule);
  return lines.join('\n');
}
