import { randomBytes } from 'node:crypto';
import { DESIRED_TASKS_DOC_ID, type DesiredChange, TASK_DONE_STATES, type TaskStatus } from '../crdt-schema/index.ts';
import type { MemberStatus } from '../mesh/index.ts';
import type { ApiClient } from './api-client.ts';
import { CatalogFileError, signChanges } from './catalog-command.ts';
import { type Command, type FlagKind, type ParsedArgs, UsageError, apiCommandSpec, parseDuration } from './cli-args.ts';
import { decide } from './decisions.ts';
import { readOperatorKeyFile } from './key-files.ts';

type Flags = ParsedArgs['flags'];

const POLL_MS = 500;

/**
 * `task create|list|show|cancel|wait`: tasks are operator-signed requests (desired/tasks) that the
 * dispatcher leases to the node they name (docs/CATALOG.md §Tasks).
 */
export function taskCommands(apiFlags: Readonly<Record<string, FlagKind>>, clientOf: (flags: Flags) => Promise<ApiClient>, print: (value: unknown) => void): Record<string, Command> {
  const out = (text: string): void => void process.stdout.write(text);
  const spec = apiCommandSpec(apiFlags);
  const tasks = async (client: ApiClient, query: Record<string, string> = {}): Promise<TaskStatus[]> =>
    (await client.get<{ tasks: TaskStatus[] }>(`/api/v1/tasks${Object.keys(query).length === 0 ? '' : `?${new URLSearchParams(query).toString()}`}`)).tasks;
  const one = async (client: ApiClient, id: string): Promise<TaskStatus | undefined> => (await tasks(client, { id }))[0];
  const find = async (client: ApiClient, id: string): Promise<TaskStatus> => {
    const task = await one(client, id);
    if (task === undefined) throw new CatalogFileError(`no task ${JSON.stringify(id)} on this node (yet)`);
    return task;
  };
  const send = async (flags: Flags, changes: DesiredChange[]): Promise<void> => {
    const client = await clientOf(flags);
    await client.post('/api/v1/tasks', { entries: signChanges(await readOperatorKeyFile(String(flags['key'])), changes, DESIRED_TASKS_DOC_ID) });
  };
  return {
    'task create': {
      spec: spec({ min: 1, max: 257, name: 'the command to run (after --)' }, { node: 'string', timeout: 'string', id: 'string' }, ['node']),
      run: async ({ flags, positional }) => {
        const client = await clientOf(flags);
        const node = await resolveNode(client, String(flags['node']));
        const id = flags['id'] === undefined ? `t-${randomBytes(6).toString('hex')}` : String(flags['id']);
        const timeoutMs = flags['timeout'] === undefined ? undefined : parseDuration(String(flags['timeout']));
        const value = { id, node, command: positional[0]!, args: positional.slice(1), ...(timeoutMs === undefined ? {} : { timeoutMs }) };
        await send(flags, [{ op: 'put', kind: 'task', value } as DesiredChange]);
        if (flags['json'] === true) print({ id, node });
        else out(`task ${id} asked of ${node}: follow it with powernode task show ${id} (or task wait ${id})\n`);
        return 0;
      },
    },
    'task list': {
      spec: spec({ min: 0, max: 0, name: '' }, { node: 'string', state: 'string' }),
      run: async ({ flags }) => {
        const client = await clientOf(flags);
        const node = flags['node'] === undefined ? undefined : await resolveNode(client, String(flags['node']));
        const listed = await tasks(client, { ...(node === undefined ? {} : { node }), ...(flags['state'] === undefined ? {} : { state: String(flags['state']) }) });
        if (flags['json'] === true) print({ tasks: listed });
        else out(listed.length === 0 ? 'no tasks\n' : `${listed.map(describeTask).join('\n')}\n`);
        return 0;
      },
    },
    'task show': {
      spec: spec({ min: 1, max: 1, name: 'task id' }),
      run: async ({ flags, positional }) => {
        const task = await find(await clientOf(flags), positional[0]!);
        if (flags['json'] === true) print(task);
        else out(formatTask(task));
        return 0;
      },
    },
    'task cancel': {
      spec: spec({ min: 1, max: 1, name: 'task id' }, { reason: 'string' }),
      run: async ({ flags, positional }) => {
        const task = await find(await clientOf(flags), positional[0]!);
        if (TASK_DONE_STATES.includes(task.state)) throw new CatalogFileError(`task ${task.id} is already ${task.state}`);
        await send(flags, [{ op: 'put', kind: 'task-cancel', value: { id: task.id, reason: String(flags['reason'] ?? '') } }]);
        if (flags['json'] === true) print({ id: task.id, cancelRequested: true });
        else out(`task ${task.id}: cancellation asked (${task.state === 'running' ? 'its command is stopped' : 'it will not start'})\n`);
        return 0;
      },
    },
    'task wait': {
      spec: spec({ min: 1, max: 1, name: 'task id' }, { timeout: 'string' }),
      run: async ({ flags, positional }) => {
        const client = await clientOf(flags);
        const deadline = Date.now() + (flags['timeout'] === undefined ? 10 * 60_000 : parseDuration(String(flags['timeout'])));
        for (;;) {
          const task = await one(client, positional[0]!);
          if (task !== undefined && TASK_DONE_STATES.includes(task.state)) {
            if (flags['json'] === true) print(task);
            else out(formatTask(task));
            return task.state === 'complete' ? 0 : 1;
          }
          if (Date.now() > deadline) throw new CatalogFileError(`task ${positional[0]} is ${task?.state ?? 'not known here'} after the wait: try again, or powernode task show ${positional[0]}`);
          await new Promise((resolve) => setTimeout(resolve, POLL_MS));
        }
      },
    },
  };
}

/** A peer id as given, or the member whose name or host name it is. */
async function resolveNode(client: ApiClient, given: string): Promise<string> {
  const { members } = await client.get<{ members: MemberStatus[] }>('/api/v1/status');
  const byId = members.find((m) => m.peerId === given);
  if (byId !== undefined) return byId.peerId;
  const named = members.filter((m) => m.name === given || m.hostname === given);
  if (named.length === 1) return named[0]!.peerId;
  if (named.length > 1) throw new UsageError(`${given} names ${named.length} members: give its peer id (${named.map((m) => m.peerId).join(', ')})`);
  throw new CatalogFileError(`no member ${JSON.stringify(given)} in the fleet: give a member's peer id, name or host name (powernode status lists them)`);
}

function describeTask(task: TaskStatus): string {
  const ended = task.run?.exitCode === undefined ? '' : ` exit ${task.run.exitCode}`;
  return `${task.id.padEnd(16)} ${task.state.padEnd(10)}${ended.padEnd(8)} ${task.node}  ${[task.command, ...task.args].join(' ')}`;
}

function formatTask(task: TaskStatus): string {
  const lines = [`task ${task.id}: ${task.state}${task.cancelRequested && task.state !== 'cancelled' ? ' (cancellation asked)' : ''}`];
  lines.push(`  node:      ${task.node}`, `  command:   ${[task.command, ...task.args].join(' ')}`, `  asked at:  ${new Date(task.requestedAt).toISOString()}`);
  if (task.lease !== undefined) lines.push(`  lease:     ${task.lease.leaseId} (epoch ${task.lease.epoch}) until ${new Date(task.lease.until).toISOString()}${task.lease.reason === undefined ? '' : `: ${task.lease.reason}`}`);
  if (task.run !== undefined) {
    const run = task.run;
    lines.push(`  started:   ${new Date(run.startedAt).toISOString()}`);
    if (run.endedAt !== undefined) lines.push(`  ended:     ${new Date(run.endedAt).toISOString()}${run.exitCode === undefined ? '' : `, exit code ${run.exitCode}`}${run.reason === undefined ? '' : `: ${run.reason}`}`);
    if (run.output !== undefined && run.output !== '') lines.push('  output (end):', ...run.output.trimEnd().split('\n').map((line) => `    ${line}`));
  }
  return `${lines.join('\n')}\n`;
}

/** An instance as `GET /api/v1/instances` lists it. */
interface InstanceAnswer {
  readonly peerId: string;
  readonly name: string | null;
  readonly observed: string;
  readonly state: string;
  readonly since: number | null;
  readonly epoch: number | null;
  readonly transitions: ReadonlyArray<{ from: string; to: string; event: string; by: string; epoch: number; reason: string; at: number }>;
}

/**
 * `instance list|show|start|stop|reboot|terminate`: every member machine is an instance whose
 * lifecycle the instance reconciler records (docs/CATALOG.md §Instances). Actions are signed
 * requests; `terminate` also signs the node's revocation.
 */
export function instanceCommands(apiFlags: Readonly<Record<string, FlagKind>>, clientOf: (flags: Flags) => Promise<ApiClient>, print: (value: unknown) => void): Record<string, Command> {
  const out = (text: string): void => void process.stdout.write(text);
  const spec = apiCommandSpec(apiFlags);
  const list = async (client: ApiClient): Promise<InstanceAnswer[]> => (await client.get<{ instances: InstanceAnswer[] }>('/api/v1/instances')).instances;
  const commands: Record<string, Command> = {
    'instance list': {
      spec: spec({ min: 0, max: 0, name: '' }),
      run: async ({ flags }) => {
        const instances = await list(await clientOf(flags));
        if (flags['json'] === true) print({ instances });
        else out(`${instances.map((i) => `${i.peerId}  ${(i.name ?? '?').padEnd(16)} ${i.state.padEnd(12)} (seen ${i.observed})${i.since === null ? '' : ` since ${new Date(i.since).toISOString()}`}`).join('\n')}\n`);
        return 0;
      },
    },
    'instance show': {
      spec: spec({ min: 1, max: 1, name: 'node (peer id, name or host name)' }),
      run: async ({ flags, positional }) => {
        const client = await clientOf(flags);
        const node = await resolveNode(client, positional[0]!).catch(() => positional[0]!);
        const instance = (await list(client)).find((i) => i.peerId === node);
        if (instance === undefined) throw new CatalogFileError(`no instance ${JSON.stringify(positional[0])}`);
        if (flags['json'] === true) print(instance);
        else {
          const lines = [`instance ${instance.peerId} (${instance.name ?? 'gone'}): ${instance.state}, seen ${instance.observed}`];
          for (const t of instance.transitions) lines.push(`  ${new Date(t.at).toISOString()}  ${t.from} -> ${t.to} (${t.event}) by ${t.by.slice(0, 16)}… epoch ${t.epoch}: ${t.reason}`);
          out(`${lines.join('\n')}\n`);
        }
        return 0;
      },
    },
  };
  for (const action of ['start', 'stop', 'reboot', 'terminate'] as const) {
    commands[`instance ${action}`] = {
      spec: spec({ min: 1, max: 1, name: 'node (peer id, name or host name)' }, { reason: 'string' }),
      run: async ({ flags, positional }) => {
        const client = await clientOf(flags);
        const node = await resolveNode(client, positional[0]!);
        const key = await readOperatorKeyFile(String(flags['key']));
        const reason = String(flags['reason'] ?? '');
        const id = `a-${randomBytes(6).toString('hex')}`;
        // Terminate is a revocation (every node disconnects it, for good) recorded as the instance's end.
        if (action === 'terminate') await decide(client, key, 'revoke-node', { node, reason });
        await client.post('/api/v1/tasks', { entries: signChanges(key, [{ op: 'put', kind: 'instance-action', value: { id, node, action, reason } }], DESIRED_TASKS_DOC_ID) });
        if (flags['json'] === true) print({ id, node, action });
        else out(`asked to ${action} ${node} (action ${id}): powernode instance show ${node} follows it\n`);
        return 0;
      },
    };
  }
  return commands;
}
