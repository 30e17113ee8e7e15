/** The latest time an entry may carry: the end of year 9999, past which a day is not `yyyy-mm-dd`. */
export const LATEST_ENTRY_TIME_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

/** Whether `at` is a time an entry may carry (whole ms, from 1970 to the end of year 9999). */
export function isEntryTime(at: number): boolean {
  return Number.isSafeInteger(at) && at >= 0 && at <= LATEST_ENTRY_TIME_MS;
}
