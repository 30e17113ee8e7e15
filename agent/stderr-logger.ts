import type { Logger } from '../mesh/index.ts';

const LEVELS = { debug: 10, info: 20, warn: 30, error: 40 } as const;
type Level = keyof typeof LEVELS;

/** JSON lines on stderr, one per record; the threshold comes from POWERNODE_LOG (default info). */
export class StderrLogger implements Logger {
  readonly #threshold: number;
  readonly #base: Readonly<Record<string, unknown>>;

  constructor(level: string = process.env['POWERNODE_LOG'] ?? 'info', base: Readonly<Record<string, unknown>> = {}) {
    this.#threshold = LEVELS[(level in LEVELS ? level : 'info') as Level];
    this.#base = base;
  }

  debug(message: string, fields?: Readonly<Record<string, unknown>>): void {
    this.#write('debug', message, fields);
  }
  info(message: string, fields?: Readonly<Record<string, unknown>>): void {
    this.#write('info', message, fields);
  }
  warn(message: string, fields?: Readonly<Record<string, unknown>>): void {
    this.#write('warn', message, fields);
  }
  error(message: string, fields?: Readonly<Record<string, unknown>>): void {
    this.#write('error', message, fields);
  }

  #write(level: Level, message: string, fields: Readonly<Record<string, unknown>> = {}): void {
    if (LEVELS[level] < this.#threshold) return;
    process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level, message, ...this.#base, ...fields })}\n`);
  }
}
