import { readFileSync } from 'node:fs';

/** The powernode release, from package.json. */
export const POWERNODE_VERSION: string = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
