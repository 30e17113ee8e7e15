/** What to run. */
export interface ProcessRequest {
  readonly command: string;
  readonly args: readonly string[];
  readonly input?: string | Uint8Array;
  readonly env?: Readonly<Record<string, string>>;
  readonly cwd?: string;
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
  /** Called with the process id once the process runs (so a restarted caller can find what it left running). */
  readonly onStart?: (pid: number) => void;
}

/** What came back. A non-zero exit is a result, not an exception. */
export interface ProcessResult {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
  /** True when the process was stopped by the timeout or the abort signal. */
  readonly killed: boolean;
}

/**
 * Runs operating-system commands (wg, ip, vtysh…) on behalf of the core. A command that is
 * stopped (timeout, abort) is stopped with everything it started, not only its first process.
 */
export interface ProcessRunner {
  run(request: ProcessRequest): Promise<ProcessResult>;
  /**
   * Stops process `pid` if it still runs exactly `argv` (a command a previous process of this
   * node started and left behind when it died); true when it was found and stopped.
   */
  stopOrphan?(pid: number, argv: readonly string[]): Promise<boolean>;
  /**
   * Stops every process whose environment holds `name=value` (a command a previous process of
   * this node started with that variable, and everything that command started, which inherits
   * it); resolves with how many were found.
   */
  stopByEnv?(name: string, value: string): Promise<number>;
}

/** Thrown when a command cannot be started at all (not found, not executable). */
export class ProcessStartError extends Error {
  override name = 'ProcessStartError';
}
