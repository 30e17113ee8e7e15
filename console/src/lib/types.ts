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

/** Task states (crdt-schema/task-doc.ts TaskStatus.state). */
export const TASK_STATES = ['pending', 'scheduled', 'running', 'complete', 'failed', 'aborted', 'cancelled'] as const;
export type TaskState = (typeof TASK_STATES)[number];

/** A node's run of a task (crdt-schema/task-doc.ts TaskRun). */
export interface TaskRun {
  readonly leaseId: string;
  readonly epoch: number;
  readonly state: 'running' | 'complete' | 'failed' | 'aborted';
  readonly startedAt: number;
  readonly endedAt?: number;
  readonly exitCode?: number;
  /** The end of stdout and stderr (at most 4 KiB). */
  readonly output?: string;
  readonly reason?: string;
  readonly pid?: number;
}

/** A dispatcher's lease on a task, or its closing of a task that never ran. */
export interface TaskLease {
  readonly leaseId: string;
  readonly node: string;
  readonly epoch: number;
  readonly until: number;
  readonly at: number;
  readonly closed?: 'cancelled' | 'aborted';
  readonly reason?: string;
}

/** One task and how it stands (GET /api/v1/tasks → {tasks}). */
export interface TaskStatus {
  readonly id: string;
  /** The peer id of the node that runs it. */
  readonly node: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly timeoutMs: number;
  readonly requestedAt: number;
  readonly state: TaskState;
  readonly lease?: TaskLease;
  readonly run?: TaskRun;
  readonly cancelRequested: boolean;
}

/** One recorded lifecycle transition of an instance. */
export interface InstanceTransition {
  readonly from: string;
  readonly to: string;
  readonly event: string;
  /** An operator's public key or a node's peer id. */
  readonly by: string;
  readonly epoch: number;
  readonly reason: string;
  readonly at: number;
}

/** A member machine's lifecycle (GET /api/v1/instances → {instances}). */
export interface InstanceInfo {
  readonly peerId: string;
  readonly name: string | null;
  /** Failure detection's state of it, or `gone` when it is no longer a member. */
  readonly observed: string;
  readonly state: string;
  readonly since: number | null;
  readonly epoch: number | null;
  /** Oldest first, as recorded (at most 20). */
  readonly transitions: readonly InstanceTransition[];
}

export interface CatalogModule {
  readonly name: string;
  readonly variety: string;
  readonly category: { readonly name: string; readonly position: number };
  readonly priority: number;
  readonly parent?: string;
  readonly immutable: boolean;
  readonly rebootRequired: boolean;
}

export interface CatalogTemplate {
  readonly name: string;
  readonly modules: ReadonlyArray<{ readonly module: string; readonly enabled: boolean; readonly priority: number }>;
}

export interface CatalogAssignment {
  /** A peer id or a host name (a node may be named before it joins). */
  readonly node: string;
  readonly module: string;
  readonly template?: string;
  readonly enabled: boolean;
}

export interface CatalogPool {
  readonly name: string;
  readonly template: string;
  readonly target: number;
  readonly min: number;
  readonly max: number;
  readonly lifecycle: string;
  readonly status: string;
}

export interface CatalogVersion {
  readonly module: string;
  readonly number: number;
  readonly state: string;
  readonly artifacts: Readonly<Record<string, { readonly digest: string }>>;
  readonly signature?: { readonly publicKey: string; readonly signature: string };
}

export interface CatalogTrust {
  readonly module: string;
  readonly publishers: readonly string[];
}

/** GET /api/v1/catalog: the desired catalog as the node folded it. */
export interface CatalogAnswer {
  readonly catalog: {
    readonly modules: readonly CatalogModule[];
    readonly templates: readonly CatalogTemplate[];
    readonly assignments: readonly CatalogAssignment[];
    readonly pools: readonly CatalogPool[];
    readonly versions: readonly CatalogVersion[];
    readonly trust: readonly CatalogTrust[];
  };
  readonly entries: number;
  readonly skipped: ReadonlyArray<{ readonly entry: string; readonly index: number; readonly reason: string }>;
}

export interface CompositionProblem {
  readonly kind: string;
  readonly severity: 'error' | 'warning';
  readonly message: string;
}

/** GET /api/v1/catalog/preview?template=NAME (crdt-schema/catalog/preview.ts TemplatePreview). */
export interface TemplatePreview {
  readonly template: string;
  readonly closure: ReadonlyArray<{
    readonly module: string;
    readonly variety: string;
    readonly category: string;
    readonly effectivePriority: number;
    readonly explicit: boolean;
    readonly requiredBy: readonly string[];
  }>;
  readonly conflicts: readonly CompositionProblem[];
  readonly warnings: readonly CompositionProblem[];
  readonly fingerprint: string;
  readonly footprint: { readonly modules: readonly string[]; readonly packages: readonly string[]; readonly paths: readonly string[] };
  readonly ok: boolean;
}
