import { NodeApiError, type NodeApi } from './api.ts';
import { eventMatches } from './format.ts';
import type { FleetEvent, LiveMessage, Member, MemberState, NodeStatus } from './types.ts';

/** How the console's link to its node stands, for the connection indicator. */
export type ConnectionState =
  | { readonly kind: 'connecting' }
  | { readonly kind: 'live'; readonly peerId: string; readonly sinceMs: number }
  | { readonly kind: 'reconnecting'; readonly attempt: number; readonly retryInMs: number; readonly reason: string }
  | { readonly kind: 'refused'; readonly reason: string; readonly retryInMs: number }
  | { readonly kind: 'stopped' };

/** The part of a WebSocket the connection uses (a browser WebSocket, or a test double). */
export interface SocketLike {
  onopen: ((event: Event) => void) | null;
  onmessage: ((event: MessageEvent) => void) | null;
  onclose: ((event: CloseEvent) => void) | null;
  onerror: ((event: Event) => void) | null;
  close(code?: number, reason?: string): void;
}

export interface ConnectionPorts {
  readonly api: Pick<NodeApi, 'base' | 'get' | 'webSocketUrl'>;
  readonly openSocket?: (url: string) => SocketLike;
  readonly setTimeout?: (fn: () => void, ms: number) => unknown;
  readonly clearTimeout?: (id: unknown) => void;
  readonly now?: () => number;
}

export interface EventFilter {
  readonly kind: string;
  readonly severity: string;
}

const RECONNECT_MIN_MS = 250;
const RECONNECT_MAX_MS = 4_000;
/** A refused key is asked about again now and then (an operator may fix the fleet meanwhile). */
const REFUSED_RETRY_MS = 15_000;
/** Status is read again this often while live, for counters that have no event (replication bytes). */
const POLL_MS = 5_000;
/** Least time between two status reads when changes keep coming. */
const REFRESH_GAP_MS = 40;
export const EVENTS_KEPT_MAX = 500;

/**
 * The console's live view of one node: its status, kept current by the node's WebSocket messages
 * (member states are patched at once; document changes read status again, coalesced), and
 * reconnected by itself with backoff when the node goes away or restarts.
 */
export class FleetConnection {
  status = $state.raw<NodeStatus | undefined>(undefined);
  connection = $state.raw<ConnectionState>({ kind: 'connecting' });
  /** The latest events, newest first; undefined until read, null when the node has no event feed. */
  events = $state.raw<readonly FleetEvent[] | null | undefined>(undefined);
  eventFilter = $state.raw<EventFilter>({ kind: '', severity: '' });
  /** When the shown status last changed (ms, performance clock), for the latency benchmark. */
  updatedAt = $state.raw(0);

  readonly #ports: Required<Omit<ConnectionPorts, 'api'>> & Pick<ConnectionPorts, 'api'>;
  #socket: SocketLike | undefined;
  #attempt = 0;
  #timer: unknown;
  #pollTimer: unknown;
  #stopped = false;
  #refreshing = false;
  #dirty = false;
  /** Member states learned from the socket, re-applied over a status read that started before them. */
  readonly #patches = new Map<string, { state: MemberState; atMs: number }>();

  constructor(ports: ConnectionPorts) {
    this.#ports = {
      api: ports.api,
      openSocket: ports.openSocket ?? ((url) => new WebSocket(url)),
      setTimeout: ports.setTimeout ?? ((fn, ms) => globalThis.setTimeout(fn, ms)),
      clearTimeout: ports.clearTimeout ?? ((id) => globalThis.clearTimeout(id as number)),
      now: ports.now ?? (() => performance.now()),
    };
  }

  get base(): string {
    return this.#ports.api.base;
  }

  start(): void {
    this.#stopped = false;
    // Status is read at once, beside the socket's handshake, so the first screen does not wait for hello.
    this.refresh();
    void this.#connect();
  }

  stop(): void {
    this.#stopped = true;
    this.#ports.clearTimeout(this.#timer);
    this.#ports.clearTimeout(this.#pollTimer);
    const socket = this.#socket;
    this.#socket = undefined;
    socket?.close(1000, 'console closed');
    this.connection = { kind: 'stopped' };
  }

  /** Reads status again now (or right after the read in flight). */
  refresh(): void {
    if (this.#refreshing) {
      this.#dirty = true;
      return;
    }
    void this.#refresh();
  }

  setEventFilter(filter: EventFilter): void {
    this.eventFilter = filter;
    void this.#loadEvents();
  }

  async #connect(): Promise<void> {
    if (this.#stopped) return;
    let socket: SocketLike;
    try {
      socket = this.#ports.openSocket(await this.#ports.api.webSocketUrl());
    } catch (error) {
      this.#retry(String((error as Error).message));
      return;
    }
    this.#socket = socket;
    let helloed = false;
    socket.onmessage = (event) => {
      const message = parseMessage(event.data);
      if (message === undefined) return;
      if (message.type === 'hello') helloed = true;
      this.handle(message);
    };
    socket.onclose = () => {
      if (this.#socket !== socket) return;
      this.#socket = undefined;
      this.#ports.clearTimeout(this.#pollTimer);
      if (!helloed) void this.#diagnose();
      else this.#retry(`The connection to the node at ${this.base} closed.`);
    };
    socket.onerror = () => {
      // A close event follows; it decides what to do.
    };
  }

  /** Applies one live message. Public so tests (and the benchmark) can feed messages. */
  handle(message: LiveMessage): void {
    switch (message.type) {
      case 'hello':
        this.#attempt = 0;
        this.connection = { kind: 'live', peerId: message.peerId, sinceMs: this.#ports.now() };
        this.refresh();
        void this.#loadEvents();
        this.#schedulePoll();
        return;
      case 'member:state':
        this.#patches.set(message.peerId, { state: message.state, atMs: this.#ports.now() });
        this.#patchMember(message.peerId, (member) => ({ ...member, state: message.state }));
        return;
      case 'peer:connect':
      case 'peer:disconnect':
        this.#patchMember(message.peerId, (member) => ({ ...member, connected: message.type === 'peer:connect' }));
        this.refresh();
        return;
      case 'event:new':
        this.#addEvent(message.event);
        return;
      case 'doc:changed':
      case 'singleton:changed':
        this.refresh();
        return;
    }
  }

  #patchMember(peerId: string, change: (member: Member) => Member): void {
    const status = this.status;
    if (status === undefined) return;
    const index = status.members.findIndex((m) => m.peerId === peerId);
    if (index === -1) {
      this.refresh();
      return;
    }
    const members = status.members.slice();
    members[index] = change(members[index]!);
    this.#show({ ...status, members });
  }

  #show(status: NodeStatus): void {
    this.status = status;
    this.updatedAt = this.#ports.now();
  }

  async #refresh(): Promise<void> {
    this.#refreshing = true;
    try {
      do {
        this.#dirty = false;
        const startedMs = this.#ports.now();
        let status: NodeStatus;
        try {
          status = await this.#ports.api.get<NodeStatus>('/api/v1/status');
        } catch (error) {
          // The socket's close event reports a node that went away; a refused read closes the socket.
          if (error instanceof NodeApiError && error.status === 401) this.#refuse(error.message);
          return;
        }
        this.#show(this.#withPatches(status, startedMs));
        if (this.#dirty) await new Promise((resolve) => this.#ports.setTimeout(() => resolve(undefined), REFRESH_GAP_MS));
      } while (this.#dirty && !this.#stopped);
    } finally {
      this.#refreshing = false;
    }
  }

  /** Member states the socket reported after this read began are newer than what it returned. */
  #withPatches(status: NodeStatus, startedMs: number): NodeStatus {
    let members: Member[] | undefined;
    for (const [peerId, patch] of this.#patches) {
      if (patch.atMs < startedMs) {
        this.#patches.delete(peerId);
        continue;
      }
      members ??= status.members.slice();
      const index = members.findIndex((m) => m.peerId === peerId);
      if (index !== -1) members[index] = { ...members[index]!, state: patch.state };
    }
    return members === undefined ? status : { ...status, members };
  }

  async #loadEvents(): Promise<void> {
    const { kind, severity } = this.eventFilter;
    const query = new URLSearchParams();
    if (kind !== '') query.set('kind', kind);
    if (severity !== '') query.set('severity', severity);
    query.set('limit', '200');
    try {
      const answer = await this.#ports.api.get<{ events?: unknown }>(`/api/v1/events?${query}`);
      if (this.eventFilter.kind !== kind || this.eventFilter.severity !== severity) return;
      this.events = Array.isArray(answer.events) ? (answer.events as FleetEvent[]).slice(0, EVENTS_KEPT_MAX) : null;
    } catch (error) {
      // A node without the event feed answers 404 "no such endpoint": the view says so.
      if (error instanceof NodeApiError && error.status === 404) this.events = null;
    }
  }

  #addEvent(event: FleetEvent): void {
    if (!eventMatches(event, this.eventFilter)) return;
    const current = this.events ?? [];
    if (current.some((e) => e.id === event.id)) return;
    this.events = [event, ...current].slice(0, EVENTS_KEPT_MAX);
  }

  #schedulePoll(): void {
    this.#ports.clearTimeout(this.#pollTimer);
    this.#pollTimer = this.#ports.setTimeout(() => {
      if (this.#socket === undefined || this.#stopped) return;
      this.refresh();
      this.#schedulePoll();
    }, POLL_MS);
  }

  /** The socket closed before the node said hello: ask over HTTP why (a refused key says so there). */
  async #diagnose(): Promise<void> {
    try {
      await this.#ports.api.get('/api/v1/status');
      this.#retry(`The node at ${this.base} refused the live connection.`);
    } catch (error) {
      if (error instanceof NodeApiError && error.status === 401) this.#refuse(error.message);
      else this.#retry(error instanceof Error ? error.message : String(error));
    }
  }

  #refuse(reason: string): void {
    this.#socket?.close(4001, 'refused');
    this.#socket = undefined;
    this.#schedule(REFUSED_RETRY_MS);
    this.connection = { kind: 'refused', reason, retryInMs: REFUSED_RETRY_MS };
  }

  #retry(reason: string): void {
    if (this.#stopped) return;
    const delayMs = Math.min(RECONNECT_MAX_MS, RECONNECT_MIN_MS * 2 ** this.#attempt);
    this.#attempt += 1;
    this.connection = { kind: 'reconnecting', attempt: this.#attempt, retryInMs: delayMs, reason };
    this.#schedule(delayMs);
  }

  #schedule(delayMs: number): void {
    this.#ports.clearTimeout(this.#timer);
    this.#timer = this.#ports.setTimeout(() => void this.#connect(), delayMs);
  }
}

/** A message from the socket, or undefined for anything that is not one (it is ignored). */
export function parseMessage(data: unknown): LiveMessage | undefined {
  if (typeof data !== 'string' || data.length > 1_000_000) return undefined;
  try {
    const value = JSON.parse(data) as { type?: unknown };
    return typeof value === 'object' && value !== null && typeof value.type === 'string' ? (value as LiveMessage) : undefined;
  } catch {
    return undefined;
  }
}
