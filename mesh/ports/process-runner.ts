/** What to run. */
export interface ProcessRequest {
  readonly command: string;
  readonly args: readonly string[];
  readonly input?: string | Uint8Array;
  readonly env?: Readonly<Record<string, string>>;
  readonly cwd?: string;
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

/** What came back. A non-zero exit is a result, not an exception. */
export interface ProcessResult {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
  /** True when the process was stopped by the timeout or the abort signal. */
  readonly killed: boolean;
}

/** Runs operating-system commands (wg, ip, vtysh…) on behalf of the core. */
export interface ProcessRunner {
  run(request: ProcessRequest): Promise<ProcessResult>;
}

/** Thrown when a command cannot be started at all (not found, not executable). */
export class ProcessStartError extends Error {
  override name = 'ProcessStartError';
}
