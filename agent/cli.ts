import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { type DecisionBody, type DecisionKind, parseLabelAssignment } from '../crdt-schema/index.ts';
import type { MemberStatus } from '../mesh/index.ts';
import { ApiClient } from './api-client.ts';
import { type Command, type ParsedArgs, UsageError, parseArgs, parseDuration, parseHostPort } from './cli-args.ts';
import { type DecisionResult, addOperator, decide, revokeOperator } from './decisions.ts';
import { eventsCommand } from './events-command.ts';
import { catalogCommands } from './catalog-cli.ts';
import { instanceCommands, taskCommands } from './task-cli.ts';
import { poolCommands } from './pool-cli.ts';
import { versionCommands } from './version-cli.ts';
import { fleetCommands } from './fleet-command.ts';
import { createJoinString } from './join-tokens.ts';
import { readOperatorKeyFile, readRootKeyFile } from './key-files.ts';
import type { RunningNode } from './node-process.ts';
import { StderrLogger } from './stderr-logger.ts';

export const DEFAULT_API = '127.0.0.1:7420';
export const DEFAULT_LISTEN = '/ip4/0.0.0.0/tcp/7421';

const USAGE = `usage: powernode <command> [flags]

  up           [--data DIR] [node start flags]                 start a node, creating a fleet in DIR (./data) on first run
  fleet init   --data DIR [--name NAME]                      create a fleet and its keys in DIR
  node start   --data DIR [--listen MULTIADDR]... [--api HOST:PORT] [--join JOIN] [--name NAME]
  token create --api URL --key KEYFILE [--ttl 1h] [--name NODE] [--json]
  status       --api URL --key KEYFILE [--json]
  events       --api URL --key KEYFILE [--json] [--follow] [--kind K|AREA.*] [--severity S] [--subject X] [--limit N]
  label set    --api URL --key KEYFILE --node PEERID key=value...
  label rm     --api URL --key KEYFILE --node PEERID key...
  node revoke  --api URL --key KEYFILE [--reason TEXT] PEERID  cut a node off the fleet, for good
  sim list     [--json]                                        the simulator's scenarios
  sim run      SCENARIO [--nodes N] [--seed S | --seeds A..B] [--duration 2m] [--voters K] [--json] [--check-determinism]
  module put   --api URL --key KEYFILE [--json] FILE...        add or update modules (JSON: one object or a list)
  module list | show NAME | rm NAME...                       (also: template, pool; each with --api, --key, [--json])
  module publisher create --name NAME --out FILE             a publisher key that signs module versions
  module trust NAME --publisher KEY... [--promotion-instances N --promotion-dwell 30m]   which publisher keys a module takes
  module version publish NAME --number N --artifact ARCH=sha256:HEX... --publisher-key FILE
  module version promote NAME@N STATE | list [NAME]          built, staging, blessed (trusted, with evidence), live, retired
  module version evidence NAME@N                             which members run it, and whether it may be blessed
  template preview NAME                                      closure, conflicts, warnings, filter, fingerprint, footprint
  template apply NAME --node NODE... [--purge-stale] [--dry-run]   assign the template's modules to nodes
  assignment list [--node NODE]                              what each node is given
  task create  --api URL --key KEYFILE --node NODE [--timeout 10m] [--id ID] -- COMMAND [ARGS...]
  task list [--node NODE] [--state S] | show ID | cancel ID [--reason TEXT] | wait ID [--timeout 10m]
  pool acquire NAME [--for TEXT] | release NAME MEMBER [--reuse] | members NAME   claim a pool member, give it back, see members' states
  instance list | show NODE | start|stop|reboot|terminate NODE [--reason TEXT]   member machines' lifecycle
  fleet apply FILE [--dry-run] [--prune]                     make the catalog what fleet.yaml says (--api, --key, [--json])
  fleet export [--out FILE]                                  the catalog as a fleet.yaml (--api, --key)
  operator add    --api URL --key KEYFILE --root ROOTKEY --name NAME --out NEWKEYFILE
  operator revoke --api URL --key KEYFILE --root ROOTKEY [--reason TEXT] PUBLICKEY

Exit codes: 0 done, 1 refused (the message says what to do), 2 wrong usage.`;

const API_FLAGS = { api: 'string', key: 'string', json: 'boolean' } as const;

const COMMANDS: Record<string, Command> = {
  ...catalogCommands(API_FLAGS, (flags) => apiClient(flags), print),
  ...taskCommands(API_FLAGS, (flags) => apiClient(flags), print),
  ...poolCommands(API_FLAGS, (flags) => apiClient(flags), print),
  ...instanceCommands(API_FLAGS, (flags) => apiClient(flags), print),
  ...versionCommands(API_FLAGS, (flags) => apiClient(flags), print),
  ...fleetCommands(API_FLAGS, (flags) => apiClient(flags), print),
  'fleet init': {
    spec: { flags: { data: 'string', name: 'string' }, required: ['data'], positional: { min: 0, max: 0, name: '' } },
    run: async ({ flags }) => {
      const [{ initFleet }, { dataDir }] = await Promise.all([import('./fleet-init.ts'), import('./data-dir.ts')]);
      const result = await initFleet(dataDir(resolve(String(flags['data']))), { name: String(flags['name'] ?? 'powernode'), log: new StderrLogger() });
      print({ fleetId: result.fleetId, peerId: result.peerId, operatorKey: result.operatorKey });
      return 0;
    },
  },
  up: {
    spec: {
      flags: { data: 'string', listen: 'list', api: 'string', join: 'string', name: 'string' },
      positional: { min: 0, max: 0, name: '' },
    },
    run: async ({ flags }) => up(flags),
  },
  'node start': {
    spec: {
      flags: { data: 'string', listen: 'list', api: 'string', join: 'string', name: 'string' },
      required: ['data'],
      positional: { min: 0, max: 0, name: '' },
    },
    run: async ({ flags }) => runNodeUntilSignal(await startFromFlags(flags)),
  },
  'token create': {
    spec: { flags: { ...API_FLAGS, ttl: 'string', name: 'string' }, required: ['api', 'key'], positional: { min: 0, max: 0, name: '' } },
    run: async ({ flags }) => {
      const ttlMs = flags['ttl'] === undefined ? undefined : parseDuration(String(flags['ttl']));
      const client = await apiClient(flags);
      const result = await createJoinString(client, await readOperatorKeyFile(String(flags['key'])), {
        ...(ttlMs === undefined ? {} : { ttlMs }),
        ...(flags['name'] === undefined ? {} : { name: String(flags['name']) }),
      });
      if (flags['json'] === true) print(result);
      else process.stdout.write(`${result.join}\n`);
      return 0;
    },
  },
  status: {
    spec: { flags: API_FLAGS, required: ['api', 'key'], positional: { min: 0, max: 0, name: '' } },
    run: async ({ flags }) => {
      const status = await (await apiClient(flags)).get<Record<string, unknown>>('/api/v1/status');
      if (flags['json'] === true) print(status);
      else process.stdout.write(formatStatus(status));
      return 0;
    },
  },
  events: {
    spec: {
      flags: { ...API_FLAGS, follow: 'boolean', kind: 'string', severity: 'string', subject: 'string', limit: 'string' },
      required: ['api', 'key'],
      positional: { min: 0, max: 0, name: '' },
    },
    run: async ({ flags }) => {
      const text = (name: string): string | undefined => (flags[name] === undefined ? undefined : String(flags[name]));
      const options = { json: flags['json'] === true, follow: flags['follow'] === true };
      const filters = { kind: text('kind'), severity: text('severity'), subject: text('subject'), limit: text('limit') };
      const given = Object.fromEntries(Object.entries(filters).filter(([, value]) => value !== undefined));
      return eventsCommand(await apiClient(flags), { ...options, ...given });
    },
  },
  'sim list': {
    spec: { flags: { json: 'boolean' }, positional: { min: 0, max: 0, name: '' } },
    // The simulator is loaded only for its own commands: a node's start does not pay for it.
    run: async ({ flags }) => (await import('./sim-command.ts')).simList(flags['json'] === true, (line) => process.stdout.write(`${line}\n`)),
  },
  'sim run': {
    spec: {
      flags: { nodes: 'string', seed: 'string', seeds: 'string', duration: 'string', voters: 'string', json: 'boolean', 'check-determinism': 'boolean', fault: 'list' },
      positional: { min: 1, max: 1, name: 'scenario (see powernode sim list)' },
    },
    run: async ({ flags, positional }) => {
      const text = (name: string): Record<string, string> => (flags[name] === undefined ? {} : { [name]: String(flags[name]) });
      const { simRun } = await import('./sim-command.ts');
      return simRun(
        { scenario: positional[0]!, ...text('nodes'), ...text('seed'), ...text('seeds'), ...text('duration'), ...text('voters'), json: flags['json'] === true, checkDeterminism: flags['check-determinism'] === true, faults: (flags['fault'] as string[] | undefined) ?? [] },
        (line) => process.stdout.write(`${line}\n`),
        (line) => process.stderr.write(`${line}\n`),
      );
    },
  },
  'label set': {
    spec: { flags: { ...API_FLAGS, node: 'string' }, required: ['api', 'key', 'node'], positional: { min: 1, max: 64, name: 'key=value' } },
    run: async ({ flags, positional }) => {
      const set: Record<string, string> = {};
      for (const text of positional) {
        const { key, value } = parseLabelAssignment(text);
        set[key] = value;
      }
      return printLabels(flags, await decideFromFlags(flags, 'labels', { node: String(flags['node']), set, remove: [] }));
    },
  },
  'label rm': {
    spec: { flags: { ...API_FLAGS, node: 'string' }, required: ['api', 'key', 'node'], positional: { min: 1, max: 64, name: 'label key' } },
    run: async ({ flags, positional }) => printLabels(flags, await decideFromFlags(flags, 'labels', { node: String(flags['node']), set: {}, remove: [...positional] })),
  },
  'operator add': {
    spec: { flags: { ...API_FLAGS, root: 'string', name: 'string', out: 'string' }, required: ['api', 'key', 'root', 'name', 'out'], positional: { min: 0, max: 0, name: '' } },
    run: async ({ flags }) => {
      const out = resolve(String(flags['out']));
      if (existsSync(out)) throw new UsageError(`${out} already exists: choose another --out`);
      const result = await addOperator(await apiClient(flags), await readOperatorKeyFile(String(flags['key'])), await readRootKeyFile(String(flags['root'])), {
        name: String(flags['name']),
        out,
      });
      if (flags['json'] === true) print(result);
      else process.stdout.write(`operator ${result.name} added (${result.publicKey}); its key is in ${result.keyFile}\n`);
      return 0;
    },
  },
  'operator revoke': {
    spec: { flags: { ...API_FLAGS, root: 'string', reason: 'string' }, required: ['api', 'key', 'root'], positional: { min: 1, max: 1, name: 'operator public key' } },
    run: async ({ flags, positional }) => {
      await revokeOperator(await apiClient(flags), await readOperatorKeyFile(String(flags['key'])), await readRootKeyFile(String(flags['root'])), {
        publicKey: positional[0]!,
        reason: String(flags['reason'] ?? ''),
      });
      if (flags['json'] === true) print({ revoked: positional[0] });
      else process.stdout.write(`operator ${positional[0]} revoked: nodes refuse its requests and decisions from now on\n`);
      return 0;
    },
  },
  'node revoke': {
    spec: { flags: { ...API_FLAGS, reason: 'string' }, required: ['api', 'key'], positional: { min: 1, max: 1, name: 'peer id' } },
    run: async ({ flags, positional }) => {
      const result = await decideFromFlags(flags, 'revoke-node', { node: positional[0]!, reason: String(flags['reason'] ?? '') });
      if (flags['json'] === true) print(result);
      else process.stdout.write(`${result.node}: revoked; every node disconnects it as the decision reaches it\n`);
      return 0;
    },
  },
};

/** Runs the CLI and returns its exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  if (argv.length === 0 || argv[0] === 'help' || argv[0] === '--help') {
    (argv.length === 0 ? process.stderr : process.stdout).write(`${USAGE}\n`);
    return argv.length === 0 ? 2 : 0;
  }
  // The longest command name that matches: `module version publish`, `module put`, `up`.
  const name = [3, 2, 1].map((words) => argv.slice(0, words).join(' ')).find((candidate) => COMMANDS[candidate] !== undefined) ?? argv[0]!;
  const command = COMMANDS[name];
  const rest = argv.slice(name.split(' ').length);
  // `--help` or `-h` among a command's flags (not among the arguments of a task's command after `--`).
  const flagsGiven = rest.includes('--') ? rest.slice(0, rest.indexOf('--')) : rest;
  if (command !== undefined && (flagsGiven.includes('--help') || flagsGiven.includes('-h'))) {
    process.stdout.write(`${usageOf(name)}\n`);
    return 0;
  }
  try {
    if (command === undefined) throw new UsageError(`unknown command ${JSON.stringify(argv.slice(0, 2).join(' '))}`);
    const args = parseArgs(rest, command.spec);
    return await command.run(args);
  } catch (error) {
    return reportError(error);
  }
}

/** The usage lines of `command`'s group (`pool acquire`: every `pool …` line), under the usage header. */
function usageOf(command: string): string {
  const lines = USAGE.split('\n');
  const group = command.split(' ')[0]!;
  const own = lines.filter((line) => line.startsWith(`  ${group} `));
  return own.length === 0 ? USAGE : [lines[0]!, '', ...own, '', lines.at(-1)!].join('\n');
}

/** Prints an error the way the CLI contract says: usage errors exit 2, refusals exit 1. */
export function reportError(error: unknown): number {
  if (error instanceof UsageError) {
    process.stderr.write(`powernode: ${error.message}\n\n${USAGE}\n`);
    return 2;
  }
  const known = ['CatalogFileError', 'FleetFileError', 'TokenRequestError', 'ApiError', 'KeyFileError', 'DataDirInUseError', 'NotInFleetError', 'JoinRefusedError', 'InvalidJoinStringError', 'OperationRefusedError',
    'InvalidLabelError', 'InvalidDecisionError', 'PoolNotFoundError', 'ApiListenError', 'StorageOpenError', 'PeerUnreachableError', 'TimeoutError'];
  const err = error as Error;
  process.stderr.write(known.includes(err.name) ? `powernode: ${err.message}\n` : `powernode: unexpected error: ${err.stack ?? String(error)}\n`);
  return 1;
}

/** Starts a node from `node start` flags (also used by `npm start`). */
export async function startFromFlags(flags: ParsedArgs['flags']): Promise<RunningNode> {
  const api = parseHostPort(String(flags['api'] ?? DEFAULT_API));
  const listen = (flags['listen'] as string[] | undefined) ?? [DEFAULT_LISTEN];
  for (const address of listen) if (!address.startsWith('/')) throw new UsageError(`--listen takes a multiaddr such as /ip4/127.0.0.1/tcp/0, not ${JSON.stringify(address)}`);
  // The node's modules (libp2p, LevelDB, the actors) load only for commands that run a node: a
  // client command such as `task list` starts in a fraction of the time.
  const [{ startNode }, { dataDir }] = await Promise.all([import('./node-process.ts'), import('./data-dir.ts')]);
  const dir = dataDir(resolve(String(flags['data'])));
  return startNode({
    dir,
    listen,
    apiHost: api.host,
    apiPort: api.port,
    ...(flags['join'] === undefined ? {} : { join: String(flags['join']) }),
    ...(flags['name'] === undefined ? {} : { name: String(flags['name']) }),
    log: new StderrLogger(),
    faultInjection: process.env['POWERNODE_FAULT_INJECTION'] === '1',
  });
}

/** Prints the ready line, then runs until SIGTERM or SIGINT and stops cleanly. */
export async function runNodeUntilSignal(running: RunningNode): Promise<number> {
  // Last resort. A promise rejected on some path the code does not await is logged, not fatal:
  // every input from peers is handled where it arrives, and one forgotten rejection must not take
  // the node down. An uncaught exception leaves state unknown: log it and exit for a restart.
  const log = new StderrLogger();
  process.on('unhandledRejection', (reason) => log.error('unhandled promise rejection', { error: String(reason), stack: (reason as Error)?.stack }));
  process.on('uncaughtException', (error) => {
    log.error('uncaught exception; exiting', { error: String(error), stack: error.stack });
    process.exit(70);
  });
  print(running.ready);
  // `on`, not `once`: execa's exit hook (signal-exit, for task commands) re-raises a signal when it
  // sees no other listener left, which would kill the process before the clean stop below runs.
  await new Promise<void>((resolveSignal) => {
    process.on('SIGTERM', () => resolveSignal());
    process.on('SIGINT', () => resolveSignal());
  });
  await running.stop();
  return 0;
}

/** `powernode up` (what `npm start` runs): a node on DIR, founding a fleet there on first run. */
async function up(given: ParsedArgs['flags']): Promise<number> {
  const flags: ParsedArgs['flags'] = { ...given, data: String(given['data'] ?? 'data'), api: String(given['api'] ?? DEFAULT_API) };
  const [{ initFleet }, { dataDir }] = await Promise.all([import('./fleet-init.ts'), import('./data-dir.ts')]);
  const dir = dataDir(resolve(String(flags['data'])));
  let created = false;
  if (!existsSync(dir.stateDir) && flags['join'] === undefined) {
    const result = await initFleet(dir, { name: String(flags['name'] ?? 'powernode'), log: new StderrLogger() });
    process.stderr.write(`Created fleet ${result.fleetId} in ${dir.root}.\nOperator key: ${result.operatorKey} (keep it safe). Root key: ${result.rootKey} (move it offline).\n`);
    created = true;
  }
  const running = await startFromFlags(flags);
  const key = dir.operatorKeyFile;
  process.stderr.write(
    `\nNode ${running.ready.peerId} is up${created ? ', founding a new fleet' : ''}. API: ${running.ready.api}\n` +
      `Console:        ${running.ready.api}/  (sign in with ${key})\n` +
      `Fleet status:   npx powernode status --api ${running.ready.api} --key ${key}\n` +
      `Fleet events:   npx powernode events --api ${running.ready.api} --key ${key} --follow\n` +
      `Add a node:     npx powernode token create --api ${running.ready.api} --key ${key}\n` +
      `  then on it:   npx powernode node start --data DIR --join <the join string>\n\n`,
  );
  return runNodeUntilSignal(running);
}

async function decideFromFlags<K extends DecisionKind>(flags: ParsedArgs['flags'], kind: K, content: DecisionBody<K>): Promise<DecisionResult> {
  return decide(await apiClient(flags), await readOperatorKeyFile(String(flags['key'])), kind, content);
}

export async function apiClient(flags: ParsedArgs['flags']): Promise<ApiClient> {
  const given = String(flags['api']);
  // HOST:PORT as `node start --api` takes it is the node's plain-HTTP API as well.
  const api = /^([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):\d{1,5}$/.test(given) ? `http://${given}` : given;
  if (!/^https?:\/\/[^/]+\/?$/.test(api)) throw new UsageError(`--api takes the node's URL or HOST:PORT, e.g. http://127.0.0.1:7420 or 127.0.0.1:7420, not ${JSON.stringify(given)}`);
  return ApiClient.create(api, String(flags['key']));
}

function printLabels(flags: ParsedArgs['flags'], result: DecisionResult): number {
  if (flags['json'] === true) {
    print({ node: result.node, labels: result.labels });
  } else {
    const { node, labels } = result as { node: string; labels: Record<string, string> };
    const text = Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(' ');
    process.stdout.write(`${node}: ${text === '' ? '(no labels)' : text}\n`);
  }
  return 0;
}

function print(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

function formatStatus(status: Record<string, unknown>): string {
  const members = status['members'] as MemberStatus[];
  const lines = [`fleet ${String(status['fleetName'])} (${String(status['fleetId'])}), ${members.length} members`];
  for (const m of members) {
    const labels = Object.entries(m.labels).map(([k, v]) => `${k}=${v}`).join(',');
    // The name it was admitted with (`token create --name`), else its host's.
    lines.push(`  ${m.self ? '*' : ' '} ${m.peerId}  ${m.state.padEnd(11)} ${(m.name ?? m.hostname ?? '?').padEnd(16)} ${labels}`);
  }
  const singletons = (status['singletons'] ?? []) as Array<{ name: string; owner: string | null; epoch: number; since: number | null; active: boolean; ownerState: string | null }>;
  for (const s of singletons) {
    const where = s.owner === null ? 'not placed yet' : `${s.active ? 'runs on' : 'last ran on'} ${s.owner} (${s.ownerState ?? 'unknown'}), epoch ${s.epoch}${s.since === null ? '' : ` since ${new Date(s.since).toISOString()}`}`;
    lines.push(`singleton ${s.name}: ${where}`);
  }
  const self = status['self'] as { revoked?: { reason: string; at: number } };
  if (self.revoked !== undefined) lines.push(`this node was revoked by an operator at ${new Date(self.revoked.at).toISOString()}${self.revoked.reason === '' ? '' : `: ${self.revoked.reason}`}`);
  const events = (status['securityEvents'] ?? []) as Array<{ kind: string; peer: string; docId: string; reason: string; count: number; observedBy: string }>;
  if (events.length > 0) {
    lines.push(`security events (${events.length}, newest first):`);
    for (const e of events.slice(0, 5)) lines.push(`  ${e.kind} from ${e.peer} on ${e.docId} ×${e.count}, seen by ${e.observedBy}: ${e.reason}`);
  }
  return `${lines.join('\n')}\n`;
}
