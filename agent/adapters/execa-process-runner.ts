import { readFile, readdir } from 'node:fs/promises';
import { type ProcessRequest, type ProcessResult, type ProcessRunner, ProcessStartError } from '../../mesh/index.ts';

const DEFAULT_TIMEOUT_MS = 60_000;

/**
 * execa is loaded with the first command, not with the node: it is ~110 modules, whose code and
 * source text a node that runs no task would hold for nothing.
 */
let execaModule: Promise<typeof import('execa')> | undefined;
const loadExeca = (): Promise<typeof import('execa')> => (execaModule ??= import('execa'));
const MAX_OUTPUT_BYTES = 16 * 1024 * 1024;

/**
 * Runs real commands with execa: no shell, bounded time and output. Each command leads a process
 * group of its own, and a timeout or an abort stops the whole group (SIGTERM, then SIGKILL for
 * whatever is left after 2 s or once the command itself has exited), so `sh -c 'a; b'` or a
 * script that starts helpers leaves nothing running.
 */
export class ExecaProcessRunner implements ProcessRunner {
  async run(request: ProcessRequest): Promise<ProcessResult> {
    const { execa } = await loadExeca();
    const subprocess = execa(request.command, [...request.args], {
      input: request.input,
      env: request.env,
      cwd: request.cwd,
      detached: true,
      maxBuffer: MAX_OUTPUT_BYTES,
      reject: false,
      stripFinalNewline: false,
      encoding: 'utf8',
    });
    const pid = subprocess.pid;
    if (pid !== undefined) request.onStart?.(pid);
    let stopped = false;
    let force: NodeJS.Timeout | undefined;
    const stop = (): void => {
      if (stopped || pid === undefined) return;
      stopped = true;
      signalGroup(pid, 'SIGTERM');
      force = setTimeout(() => signalGroup(pid, 'SIGKILL'), STOP_GRACE_MS);
    };
    const timer = setTimeout(stop, request.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    request.signal?.addEventListener('abort', stop, { once: true });
    if (request.signal?.aborted === true) stop();
    const result = await subprocess;
    clearTimeout(timer);
    request.signal?.removeEventListener('abort', stop);
    if (stopped) {
      clearTimeout(force);
      // The command is gone; what it started and did not stop with it goes too.
      signalGroup(pid!, 'SIGKILL');
    }
    if (result.failed && result.exitCode === undefined && !result.isTerminated && !stopped) {
      throw new ProcessStartError(`cannot start ${request.command}: ${result.shortMessage}`);
    }
    return {
      exitCode: result.exitCode ?? -1,
      stdout: String(result.stdout ?? ''),
      stderr: String(result.stderr ?? ''),
      killed: stopped || result.isTerminated,
    };
  }

  /** SIGTERM to every process whose environment holds `name=value`, SIGKILL to those left after 2 s; how many there were. */
  async stopByEnv(name: string, value: string): Promise<number> {
    const found = await processesWithEnv(`${name}=${value}`);
    for (const pid of found) signal(pid, 'SIGTERM');
    for (let waited = 0; waited < STOP_GRACE_MS; waited += 100) {
      if ((await processesWithEnv(`${name}=${value}`)).length === 0) return found.length;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    for (const pid of await processesWithEnv(`${name}=${value}`)) signal(pid, 'SIGKILL');
    return found.length;
  }

  /**
   * SIGTERM, then SIGKILL after 2 s, to `pid` and its process group if /proc says it runs exactly
   * `argv` (a reused pid is left alone).
   */
  async stopOrphan(pid: number, argv: readonly string[]): Promise<boolean> {
    if (!(await runsExactly(pid, argv))) return false;
    signalGroup(pid, 'SIGTERM');
    signal(pid, 'SIGTERM');
    for (let waited = 0; waited < STOP_GRACE_MS; waited += 100) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      if (!(await runsExactly(pid, argv))) break;
    }
    signalGroup(pid, 'SIGKILL');
    if (await runsExactly(pid, argv)) signal(pid, 'SIGKILL');
    return true;
  }
}

const STOP_GRACE_MS = 2_000;

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // Gone already.
  }
}

/** Signals the process group `pid` leads. */
function signalGroup(pid: number, name: NodeJS.Signals): void {
  signal(-pid, name);
}

/** The pids (other than this process) whose environment holds the exact entry `entry` (NAME=value). */
async function processesWithEnv(entry: string): Promise<number[]> {
  let names: string[];
  try {
    names = await readdir('/proc');
  } catch {
    return [];
  }
  const found: number[] = [];
  for (const name of names) {
    if (!/^[0-9]+$/.test(name) || Number(name) === process.pid) continue;
    try {
      const environ = await readFile(`/proc/${name}/environ`, 'utf8');
      if (environ.split('\0').includes(entry)) found.push(Number(name));
    } catch {
      // Gone meanwhile, or not ours to read.
    }
  }
  return found;
}

async function runsExactly(pid: number, argv: readonly string[]): Promise<boolean> {
  try {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8');
    return cmdline === `${argv.join('\0')}\0`;
  } catch {
    return false;
  }
}
