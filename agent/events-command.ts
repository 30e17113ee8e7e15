import { type EventFilter, type FleetEvent, SEVERITIES, type Severity, eventMatches } from '../crdt-schema/index.ts';
import type { ApiClient } from './api-client.ts';
import { UsageError } from './cli-args.ts';

export interface EventsOptions {
  readonly kind?: string;
  readonly severity?: string;
  readonly subject?: string;
  readonly limit?: string;
  readonly json: boolean;
  readonly follow: boolean;
}

const RECONNECT_MS = 1_000;
const RECONNECT_MAX_MS = 15_000;

/**
 * `powernode events`: the latest events (oldest first, like a log), then with `--follow` each new
 * one as it arrives. A dropped connection (the node restarted) is retried, and what happened in
 * between is listed from the node, so nothing is missed or printed twice.
 */
export async function eventsCommand(client: ApiClient, options: EventsOptions, out: (line: string) => void = (line) => process.stdout.write(`${line}\n`)): Promise<number> {
  const query = eventsQuery(options);
  const printed = new Set<string>();
  let lastAt = 0;
  const print = (event: FleetEvent): void => {
    if (printed.has(event.id)) return;
    printed.add(event.id);
    lastAt = Math.max(lastAt, event.at);
    out(options.json ? JSON.stringify(event) : formatEvent(event));
  };
  const list = async (since?: number): Promise<void> => {
    const params = new URLSearchParams(query);
    if (since !== undefined) params.set('since', String(since));
    const { events } = await client.get<{ events: FleetEvent[] }>(`/api/v1/events${params.size === 0 ? '' : `?${params}`}`);
    for (const event of [...events].reverse()) print(event);
  };
  await list();
  if (!options.follow) return 0;
  const filter: EventFilter = { ...(query['kind'] === undefined ? {} : { kind: query['kind'] }), ...(options.severity === undefined ? {} : { severity: options.severity as Severity }), ...(options.subject === undefined ? {} : { subject: options.subject }) };
  let delayMs = RECONNECT_MS;
  for (;;) {
    const opened = await follow(client, (event) => eventMatches(event, filter) && print(event), () => list(lastAt === 0 ? undefined : lastAt - 1));
    delayMs = opened ? RECONNECT_MS : Math.min(delayMs * 2, RECONNECT_MAX_MS);
    process.stderr.write(`powernode: the connection to the node closed; reconnecting in ${delayMs / 1000} s\n`);
    await new Promise((resolve) => setTimeout(resolve, delayMs));
  }
}

/** Follows the node's live events until the socket closes; true when it had opened. */
async function follow(client: ApiClient, onEvent: (event: FleetEvent) => void, onOpen: () => Promise<void>): Promise<boolean> {
  // Loaded only to follow: a listing does not need it.
  const { default: WebSocket } = await import('ws');
  return new Promise((resolve) => {
    let opened = false;
    const socket = new WebSocket(client.webSocketUrl());
    socket.on('open', () => {
      opened = true;
      // Whatever happened while no socket was open comes from a listing.
      onOpen().catch((error: unknown) => process.stderr.write(`powernode: ${(error as Error).message}\n`));
    });
    socket.on('message', (data) => {
      let message: { type?: string; event?: FleetEvent };
      try {
        message = JSON.parse(String(data)) as { type?: string; event?: FleetEvent };
      } catch {
        return;
      }
      if (message.type === 'event:new' && message.event !== undefined) onEvent(message.event);
    });
    socket.on('error', () => {});
    socket.on('close', () => resolve(opened));
  });
}

function eventsQuery(options: EventsOptions): Record<string, string> {
  if (options.severity !== undefined && !(SEVERITIES as readonly string[]).includes(options.severity)) {
    throw new UsageError(`--severity is one of ${SEVERITIES.join(', ')} (it lists that severity and above)`);
  }
  if (options.limit !== undefined && !/^[1-9]\d{0,3}$/.test(options.limit)) throw new UsageError('--limit takes a number from 1 to 5000');
  if (options.kind !== undefined && !/^[a-z][a-z0-9_.]*\*?$/.test(options.kind)) throw new UsageError('--kind takes an event kind such as system.instance_silent, or a prefix ending in * (system.*)');
  return {
    ...(options.kind === undefined ? {} : { kind: options.kind }),
    ...(options.severity === undefined ? {} : { severity: options.severity }),
    ...(options.subject === undefined ? {} : { subject: options.subject }),
    limit: options.limit ?? '100',
  };
}

function formatEvent(event: FleetEvent): string {
  const source = event.source.singleton === undefined ? event.source.peer : `${event.source.singleton}@${event.source.peer} epoch ${event.source.epoch ?? '?'}`;
  return `${new Date(event.at).toISOString()}  ${event.severity.padEnd(8)} ${event.kind}  ${event.subject ?? '-'}  ${event.detail}  (from ${source})`;
}
