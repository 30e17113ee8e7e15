import { readFile } from 'node:fs/promises';
import { execa } from 'execa';
import { type ProcessRequest, type ProcessResult, type ProcessRunner, ProcessStartError } from '../../mesh/index.ts';

const DEFAULT_TIMEOUT_MS = 60_000;
const MAX_OUTPUT_BYTES = 16 * 1024 * 1024;

/** Runs real commands with execa: no shell, bounded time and output. */
export class ExecaProcessRunner implements ProcessRunner {
  async run(request: ProcessRequest): Promise<ProcessResult> {
    const subprocess = execa(request.command, [...request.args], {
      input: request.input,
      env: request.env,
      cwd: request.cwd,
      timeout: request.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      cancelSignal: request.signal,
      maxBuffer: MAX_OUTPUT_BYTES,
      reject: false,
      stripFinalNewline: false,
      encoding: 'utf8',
    });
    if (subprocess.pid !== undefined) request.onStart?.(subprocess.pid);
    const result = await subprocess;
    if (result.failed && result.exitCode === undefined && !result.isTerminated && !result.isCanceled && !result.timedOut) {
      throw new ProcessStartError(`cannot start ${request.command}: ${result.shortMessage}`);
    }
    return {
      exitCode: result.exitCode ?? -1,
      stdout: String(result.stdout ?? ''),
      stderr: String(result.stderr ?? ''),
      killed: result.isTerminated || result.isCanceled || result.timedOut,
    };
  }

  /** SIGTERM, then SIGKILL after 2 s, to `pid` if /proc says it runs exactly `argv` (a reused pid is left alone). */
  async stopOrphan(pid: number, argv: readonly string[]): Promise<boolean> {
    if (!(await runsExactly(pid, argv))) return false;
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      return false;
    }
    for (let waited = 0; waited < 2_000; waited += 100) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      if (!(await runsExactly(pid, argv))) return true;
    }
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Gone meanwhile.
    }
    return true;
  }
}

async function runsExactly(pid: number, argv: readonly string[]): Promise<boolean> {
  try {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8');
    return cmdline === `${argv.join('\0')}\0`;
  } catch {
    return false;
  }
}
