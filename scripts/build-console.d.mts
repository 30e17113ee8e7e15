/** Builds console/ into console/build unless its sources are unchanged; true when it built. */
export function buildConsole(options?: { force?: boolean }): boolean;
