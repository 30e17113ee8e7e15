/** What the node's API answers, as far as the console reads it (GET /api/v1/status and friends). */

export type MemberState = 'alive' | 'suspect' | 'dead' | 'left';
export const MEMBER_STATES: readonly MemberState[] = ['alive', 'suspect', 'dead', 'left'];

export interface Member {
  readonly peerId: string;
  readonly name: string;
  readonly state: MemberState;
  readonly connected: boolean;
  readonly self: boolean;
  readonly labels: Readonly<Record<string, string>>;
  readonly joinedAt: number;
  readonly hostname?: string;
  readonly arch?: string;
  readonly addrs: readonly string[];
  readonly api?: string;
  readonly startedAt?: number;
}

/** One replication session with a peer (status.peers). */
export interface PeerSession {
  readonly peer: string;
  readonly open: boolean;
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly messagesIn: number;
  readonly messagesOut: number;
  readonly snapshotsIn: number;
  readonly refusedIn: number;
  readonly lastMessageAt?: number | null;
}

/** A control-plane singleton and where it runs (status.singletons, from the placement work). */
export interface Singleton {
  readonly name: string;
  readonly owner: string;
  readonly epoch: number;
  readonly since: number;
}

/** Event severities, lowest first (crdt-schema/events.ts); a filter by severity keeps that one and above. */
export const SEVERITIES = ['low', 'medium', 'high', 'critical'] as const;

/** One fleet event (GET /api/v1/events, WebSocket event:new). */
export interface FleetEvent {
  readonly id: string;
  /** `area.what`, e.g. `member.dead`. */
  readonly kind: string;
  readonly severity: string;
  readonly at: number;
  /** What it is about (a member's peer id, a singleton's name), if anything. */
  readonly subject?: string;
  readonly detail: unknown;
  readonly payload?: Readonly<Record<string, string | number>>;
  /** Who emitted it: a peer id, or the node and the singleton and epoch of a control-plane actor. */
  readonly source: string | { readonly peer: string; readonly singleton?: string; readonly epoch?: number };
}

export interface SecurityEvent {
  readonly kind: string;
  readonly peer: string;
  readonly docId: string;
  readonly reason: string;
  readonly lastAt: number;
  readonly count: number;
  readonly observedBy: string;
}

export interface NodeStatus {
  readonly fleetId: string;
  readonly fleetName: string | null;
  readonly self: {
    readonly peerId: string;
    readonly addrs: readonly string[];
    readonly api: string | null;
    readonly startedAt: number;
    readonly versions?: Readonly<Record<string, string>>;
    readonly revoked?: { readonly at: number; readonly reason: string };
    readonly lostAdmission?: { readonly reason: string };
  };
  readonly members: readonly Member[];
  readonly docs: ReadonlyArray<{ readonly id: string; readonly digest: string }>;
  readonly docProblems: ReadonlyArray<{ readonly docId: string; readonly problem: string }>;
  readonly peers: readonly PeerSession[];
  readonly connectedPeers: readonly string[];
  readonly wireErrors?: { readonly total: number };
  readonly securityEvents?: readonly SecurityEvent[];
  /** Not on every node yet: absent means the node does not place singletons. */
  readonly singletons?: readonly Singleton[];
  readonly actors?: unknown;
  readonly process?: Readonly<Record<string, number>>;
}

/** Messages on the live WebSocket. Unknown types are ignored, so newer nodes can add more. */
export type LiveMessage =
  | { readonly type: 'hello'; readonly fleetId: string; readonly peerId: string }
  | { readonly type: 'doc:changed'; readonly docId: string; readonly origin: string }
  | { readonly type: 'peer:connect'; readonly peerId: string }
  | { readonly type: 'peer:disconnect'; readonly peerId: string }
  | { readonly type: 'member:state'; readonly peerId: string; readonly state: MemberState; readonly previous?: MemberState }
  | { readonly type: 'event:new'; readonly event: FleetEvent }
  | { readonly type: 'singleton:changed' };

/** What the node answers to a decision (agent/decisions.ts DecisionResult). */
export interface DecisionResult {
  readonly decision: string;
  readonly node: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly revoked: { readonly at: number; readonly reason: string } | null;
}
