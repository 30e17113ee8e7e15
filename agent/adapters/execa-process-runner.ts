import { execa } from 'execa';
import { type ProcessRequest, type ProcessResult, type ProcessRunner, ProcessStartError } from '../../mesh/index.ts';

const DEFAULT_TIMEOUT_MS = 60_000;
const MAX_OUTPUT_BYTES = 16 * 1024 * 1024;

/** Runs real commands with execa: no shell, bounded time and output. */
export class ExecaProcessRunner implements ProcessRunner {
  async run(request: ProcessRequest): Promise<ProcessResult> {
    const result = await execa(request.command, [...request.args], {
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
}
