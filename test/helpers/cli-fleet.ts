import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { appendFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ApiClient } from '../../agent/api-client.ts';

const ROOT = resolve(import.meta.dirname, '..', '..');
const BIN = join(ROOT, 'agent', 'bin', 'powernode.mjs');

/** Runs one CLI command to completion. */
export async function cli(args: readonly string[], timeoutMs = 30_000): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], cwd: ROOT });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const [code] = (await once(child, 'exit')) as [number | null];
  clearTimeout(timer);
  return { code: code ?? -1, stdout, stderr };
}

export interface ReadyLine {
  readonly peerId: string;
  readonly addrs: string[];
  readonly api: string;
}

/** A node process started with `powernode node start`. */
export class NodeProcess {
  readonly child: ChildProcess;
  readonly ready: ReadyLine;
  readonly startMs: number;
  stderr = '';

  private constructor(child: ChildProcess, ready: ReadyLine, startMs: number) {
    this.child = child;
    this.ready = ready;
    this.startMs = startMs;
  }

  /**
   * Starts a node and resolves at its ready line; rejects with its stderr if it exits first. The
   * API gets a free port unless `extra` names one (`--api 127.0.0.1:PORT`, to restart a node where it was).
   */
  static async start(dataDir: string, extra: readonly string[] = [], timeoutMs = 20_000): Promise<NodeProcess> {
    const started = Date.now();
    const api = extra.includes('--api') ? [] : ['--api', '127.0.0.1:0'];
    const child = spawn(process.execPath, [BIN, 'node', 'start', '--data', dataDir, '--listen', '/ip4/127.0.0.1/tcp/0', ...api, ...extra], {
      stdio: ['ignore', 'pipe', 'pipe'],
      cwd: ROOT,
    });
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const ready = await new Promise<ReadyLine>((resolveReady, reject) => {
      let stdout = '';
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`node did not become ready in ${timeoutMs} ms:\n${stderr}`));
      }, timeoutMs);
      child.stdout!.on('data', (chunk: Buffer) => {
        stdout += chunk.toString();
        const newline = stdout.indexOf('\n');
        if (newline !== -1) {
          clearTimeout(timer);
          resolveReady(JSON.parse(stdout.slice(0, newline)) as ReadyLine);
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`node exited with ${code} before ready:\n${stderr}`));
      });
    });
    const node = new NodeProcess(child, ready, Date.now() - started);
    child.stderr!.on('data', (chunk: Buffer) => (node.stderr += chunk.toString()));
    node.stderr = stderr;
    // POWERNODE_TEST_LOG_DIR keeps every node's log (its stderr) in DIR/<peer id>.log, to read after a failure.
    const logDir = process.env.POWERNODE_TEST_LOG_DIR;
    if (logDir !== undefined && logDir !== '') {
      const logFile = join(logDir, `${ready.peerId}.log`);
      appendFileSync(logFile, stderr);
      child.stderr!.on('data', (chunk: Buffer) => appendFileSync(logFile, chunk));
    }
    return node;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** SIGTERM, and wait for the exit; returns the exit code and how long the shutdown took. */
  async stop(): Promise<{ code: number | null; ms: number }> {
    if (!this.running) return { code: this.child.exitCode, ms: 0 };
    const started = Date.now();
    const exited = once(this.child, 'exit');
    this.child.kill('SIGTERM');
    await exited;
    return { code: this.child.exitCode, ms: Date.now() - started };
  }

  async kill9(): Promise<void> {
    if (!this.running) return;
    const exited = once(this.child, 'exit');
    this.child.kill('SIGKILL');
    await exited;
  }

  client(keyFile: string): Promise<ApiClient> {
    return ApiClient.create(this.ready.api, keyFile);
  }
}

/** Polls `check` until it returns a value that is not undefined, or fails after `timeoutMs`. */
export async function eventually<T>(check: () => Promise<T | undefined>, timeoutMs = 10_000, what = 'condition', pollMs = 50): Promise<T> {
  const started = Date.now();
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() - started > timeoutMs) throw new Error(`${what} not reached within ${timeoutMs} ms${last === undefined ? '' : `: ${String(last)}`}`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

export interface StatusMember {
  peerId: string;
  name: string;
  state: string;
  labels: Record<string, string>;
}

export interface Status {
  fleetId: string;
  self: { peerId: string };
  members: StatusMember[];
  docs: Array<{ id: string; digest: string }>;
  docProblems: Array<{ docId: string; problem: string }>;
  wireErrors: { total: number; byPeer: Record<string, Record<string, number>> };
  connectedPeers: string[];
}

/** A fleet of real node processes on 127.0.0.1, started through the CLI. */
export interface CliFleet {
  readonly root: string;
  readonly operatorKey: string;
  readonly nodes: NodeProcess[];
  readonly clients: ApiClient[];
  /** Kills every node and removes the data. */
  stop(): Promise<void>;
}

/**
 * Founds a fleet in `n0` under a fresh temporary directory and joins `size - 1` more nodes
 * through the CLI, then waits until each is connected to all others.
 */
export async function startCliFleet(size: number, prefix: string): Promise<CliFleet> {
  const { tempDir } = await import('./temp-dir.ts');
  const root = await tempDir(prefix);
  const init = JSON.parse((await cli(['fleet', 'init', '--data', join(root.path, 'n0')])).stdout) as { operatorKey: string };
  const nodes: NodeProcess[] = [await NodeProcess.start(join(root.path, 'n0'))];
  for (let i = 1; i < size; i++) {
    const token = (await cli(['token', 'create', '--api', nodes[0]!.ready.api, '--key', init.operatorKey])).stdout.trim();
    nodes.push(await NodeProcess.start(join(root.path, `n${i}`), ['--join', token, '--name', `n${i}`]));
  }
  const clients: ApiClient[] = [];
  for (const node of nodes) clients.push(await node.client(init.operatorKey));
  // Everyone connected to everyone (the keeper's target degree is above the fleet size).
  for (let i = 0; i < size; i++) {
    await eventually(async () => ((await clients[i]!.get<Status>('/api/v1/status')).connectedPeers.length === size - 1 ? true : undefined), 20_000, `node ${i} connected to all`);
  }
  return {
    root: root.path,
    operatorKey: init.operatorKey,
    nodes,
    clients,
    stop: async () => {
      for (const node of nodes) await node.kill9();
      await root.remove();
    },
  };
}
