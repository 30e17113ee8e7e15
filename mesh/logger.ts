/** Structured logging, injected so tests and the simulator can capture or silence it. */
export interface Logger {
  debug(message: string, fields?: Readonly<Record<string, unknown>>): void;
  info(message: string, fields?: Readonly<Record<string, unknown>>): void;
  warn(message: string, fields?: Readonly<Record<string, unknown>>): void;
  error(message: string, fields?: Readonly<Record<string, unknown>>): void;
}

export interface LogRecord {
  readonly level: 'debug' | 'info' | 'warn' | 'error';
  readonly message: string;
  readonly fields: Readonly<Record<string, unknown>>;
}

/** Keeps records in memory (bounded), for tests. */
export class MemoryLogger implements Logger {
  readonly records: LogRecord[] = [];
  readonly #max: number;

  constructor(max = 10_000) {
    this.#max = max;
  }

  debug(message: string, fields: Readonly<Record<string, unknown>> = {}): void {
    this.#push('debug', message, fields);
  }
  info(message: string, fields: Readonly<Record<string, unknown>> = {}): void {
    this.#push('info', message, fields);
  }
  warn(message: string, fields: Readonly<Record<string, unknown>> = {}): void {
    this.#push('warn', message, fields);
  }
  error(message: string, fields: Readonly<Record<string, unknown>> = {}): void {
    this.#push('error', message, fields);
  }

  #push(level: LogRecord['level'], message: string, fields: Readonly<Record<string, unknown>>): void {
    if (this.records.length >= this.#max) this.records.shift();
    this.records.push({ level, message, fields });
  }
}
