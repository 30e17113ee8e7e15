/** Whether `a` and `b` hold the same items in the same order (`b` absent: never). */
export function sameList<T>(a: readonly T[], b: readonly T[] | undefined): boolean {
  if (a === b) return true;
  if (b === undefined || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
