/** The UTC calendar day (YYYY-MM-DD) of an instant: the key of daily aggregates and daily P&L. */
export function utcDay(at: number | Date): string {
  return new Date(at).toISOString().slice(0, 10);
}
