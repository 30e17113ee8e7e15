/** Where Debian's Chromium is (POWERNODE_CHROMIUM overrides). */
export const CHROMIUM_PATH: string;
/** The flags browser tests start Chromium with. */
export const CHROMIUM_FLAGS: readonly string[];
/** Chromium's path, installing it with apt-get first when it is missing. */
export function ensureChromium(): string;
