import { describe, expect, it } from 'vitest';
import { type ProcessRunner, ProcessStartError } from '../../mesh/index.ts';

/**
 * The ProcessRunner contract. The scripted runner is given recordings of the same commands the
 * real runner executes, so both must report them the same way.
 */
export function runProcessRunnerSuite(name: string, create: () => ProcessRunner): void {
  describe(`ProcessRunner contract: ${name}`, () => {
    it('returns stdout and a zero exit code', async () => {
      const result = await create().run({ command: 'echo', args: ['hello', 'fleet'] });
      expect(result).toMatchObject({ exitCode: 0, stdout: 'hello fleet\n', killed: false });
    });

    it('reports a non-zero exit as a result, with stderr', async () => {
      const result = await create().run({ command: 'sh', args: ['-c', 'echo oops >&2; exit 3'] });
      expect(result).toMatchObject({ exitCode: 3, stderr: 'oops\n', killed: false });
    });

    it('passes input on stdin', async () => {
      const result = await create().run({ command: 'cat', args: [], input: 'from stdin' });
      expect(result.stdout).toBe('from stdin');
    });

    it('throws ProcessStartError for a command that does not exist', async () => {
      await expect(create().run({ command: 'powernode-no-such-command', args: [] })).rejects.toBeInstanceOf(ProcessStartError);
    });

    it('kills a command that outlives its timeout', async () => {
      const result = await create().run({ command: 'sleep', args: ['5'], timeoutMs: 100 });
      expect(result.killed).toBe(true);
      expect(result.exitCode).not.toBe(0);
    });
  });
}
