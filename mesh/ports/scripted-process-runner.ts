import { type ProcessRequest, type ProcessResult, type ProcessRunner, ProcessStartError } from './process-runner.ts';

/** A recorded answer for one command line. */
export interface ScriptedResponse {
  readonly command: string;
  readonly args?: readonly string[];
  readonly result: Omit<ProcessResult, 'killed'> & { readonly killed?: boolean };
}

/**
 * Answers from recorded responses, for unit tests and the simulator. The first response whose
 * command (and args, when given) match is used; unmatched commands fail to start, as a missing
 * binary would. Every request is kept in {@link ScriptedProcessRunner.calls}.
 */
export class ScriptedProcessRunner implements ProcessRunner {
  readonly calls: ProcessRequest[] = [];
  readonly #responses: ScriptedResponse[];

  constructor(responses: readonly ScriptedResponse[]) {
    this.#responses = [...responses];
  }

  async run(request: ProcessRequest): Promise<ProcessResult> {
    this.calls.push(request);
    if (request.signal?.aborted === true) return { exitCode: -1, stdout: '', stderr: '', killed: true };
    const match = this.#responses.find(
      (r) => r.command === request.command && (r.args === undefined || sameArgs(r.args, request.args)),
    );
    if (match === undefined) throw new ProcessStartError(`command not found: ${request.command}`);
    return { killed: false, ...match.result };
  }
}

function sameArgs(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((value, i) => value === b[i]);
}
