import { ImmutableString } from '@automerge/automerge';
import { NAME_PATTERN } from './catalog/input.ts';
import { CATALOG_LIMITS } from './catalog/limits.ts';
import type { ModuleDigests, ReportedModule } from './catalog/promotion.ts';
import { DIGEST_PATTERN } from './catalog/version.ts';
import { toPlain } from './plain.ts';
import { SCHEMA_VERSIONS } from './schema.ts';

/** What a node observes about itself and publishes for the fleet. */
export interface NodeObservation {
  readonly peerId: string;
  readonly hostname: string;
  readonly arch: string;
  readonly platform: string;
  readonly versions: Readonly<Record<string, string>>;
  readonly addrs: readonly string[];
  readonly api?: string;
  readonly startedAt: number;
}

/** A grant as stored with the admission it allowed (its signature is checked by readers). */
export interface StoredGrant {
  readonly fleetId: string;
  readonly tokenHash: string;
  readonly expiresAt: number;
  readonly name?: string;
  readonly operator: string;
  readonly signature: string;
}

/** An admission this node made: it let `peerId` join with a token whose grant is kept here. */
export interface AdmissionView {
  readonly tokenHash: string;
  readonly peerId: string;
  readonly name: string;
  readonly admittedAt: number;
  readonly grant: StoredGrant;
}

export interface NodeStateView extends NodeObservation {
  readonly schema: number;
  readonly admissions: readonly AdmissionView[];
  /** What this node refused from peers (forged writes and the like), aggregated per peer and document. */
  readonly securityEvents: readonly SecurityEventView[];
  /** This node's activations of control-plane singletons, by singleton name (docs/PLACEMENT.md). */
  readonly singletons: Readonly<Record<string, ActivationRecord>>;
  /** The module artifacts this node reports running, by module (docs/CATALOG.md §Promotion evidence). */
  readonly modules: Readonly<Record<string, ReportedModule>>;
  /** Why its inventory cannot be read now, when it cannot (its `modules` are then stale). */
  readonly modulesProblem?: string;
}

/**
 * One node's latest activation of a singleton: its epoch, since when, and whether it still runs.
 * Written only by that node (its sealed document), so no node can claim another's activation.
 */
export interface ActivationRecord {
  readonly epoch: number;
  readonly since: number;
  readonly active: boolean;
  /** When it stopped, for an inactive record. */
  readonly until?: number;
  /** Why it stopped (lost quorum, another owner, failed, shutting down). */
  readonly reason?: string;
  /** After a failure past its restart budget, other nodes skip this one as owner until then. */
  readonly failedUntil?: number;
}

/**
 * Whether two nodes' (or two versions of one node's) activation records say the same, singleton
 * by singleton in the same order, field by field: each version of a document reads as new objects.
 */
export function sameActivationRecords(a: Readonly<Record<string, ActivationRecord>>, b: Readonly<Record<string, ActivationRecord>>): boolean {
  if (a === b) return true;
  const names = Object.keys(a);
  const otherNames = Object.keys(b);
  if (names.length !== otherNames.length) return false;
  for (let i = 0; i < names.length; i++) {
    if (names[i] !== otherNames[i]) return false;
    const x = a[names[i]!]! as unknown as Record<string, unknown>;
    const y = b[names[i]!]! as unknown as Record<string, unknown>;
    if (x === y) continue;
    const fields = Object.keys(x);
    if (fields.length !== Object.keys(y).length) return false;
    for (const field of fields) if (x[field] !== y[field]) return false;
  }
  return true;
}

/** A security event a node observed, e.g. `security.change_refused`: who sent what, and why it was refused. */
export interface SecurityEventView {
  readonly kind: string;
  readonly peer: string;
  readonly docId: string;
  readonly reason: string;
  readonly firstAt: number;
  readonly lastAt: number;
  readonly count: number;
}

/** Distinct (kind, peer, document) events a node keeps; the least recent goes first. */
export const SECURITY_EVENTS_MAX = 50;

export interface NodeStateDocument {
  schema: number;
  peerId: ImmutableString;
  hostname: ImmutableString;
  arch: ImmutableString;
  platform: ImmutableString;
  versions: Record<string, ImmutableString>;
  addrs: ImmutableString[];
  api?: ImmutableString;
  startedAt: number;
  admissions?: Record<string, { peerId: ImmutableString; name: ImmutableString; admittedAt: number; grant: Record<string, ImmutableString | number> }>;
  securityEvents?: Record<string, { kind: ImmutableString; peer: ImmutableString; docId: ImmutableString; reason: ImmutableString; firstAt: number; lastAt: number; count: number }>;
  singletons?: Record<string, { epoch: number; since: number; active: boolean; until?: number; reason?: ImmutableString; failedUntil?: number }>;
  modules?: Record<string, { digest: ImmutableString; since: number }>;
  modulesProblem?: { reason: ImmutableString; since: number };
}

/**
 * Says, in the node's own document, that its inventory cannot be read (since when, and why): the
 * modules it last reported stay, but readers take them for no evidence until it reads again.
 */
export function recordModulesProblem(draft: NodeStateDocument, reason: string, now: number): void {
  if (draft.modulesProblem !== undefined && String(draft.modulesProblem.reason) === reason.slice(0, 500)) return;
  draft.modulesProblem = { reason: str(reason.slice(0, 500)), since: draft.modulesProblem?.since ?? now };
}

/**
 * Makes the node's document report `digests` (module → the digest it runs): a module whose digest
 * is new or changed is stamped `now`, one it no longer runs is removed, the rest are untouched (so
 * an unchanged inventory makes no change, and `since` survives restarts).
 */
export function recordModules(draft: NodeStateDocument, digests: ModuleDigests, now: number): void {
  if (draft.modulesProblem !== undefined) delete draft.modulesProblem;
  if (draft.modules === undefined) {
    if (Object.keys(digests).length === 0) return;
    draft.modules = {};
  }
  const held = draft.modules;
  for (const name of Object.keys(held)) if (!Object.hasOwn(digests, name)) delete held[name];
  for (const [name, digest] of Object.entries(digests)) {
    if (held[name] !== undefined && String(held[name].digest) === digest) continue;
    held[name] = { digest: str(digest), since: now };
  }
}

/** Records this node's activation (or deactivation) of a singleton in its own document. */
export function recordActivation(draft: NodeStateDocument, name: string, record: ActivationRecord): void {
  if (draft.singletons === undefined) draft.singletons = {};
  draft.singletons[name] = {
    epoch: record.epoch,
    since: record.since,
    active: record.active,
    ...(record.until === undefined ? {} : { until: record.until }),
    ...(record.reason === undefined ? {} : { reason: str(record.reason.slice(0, 200)) }),
    ...(record.failedUntil === undefined ? {} : { failedUntil: record.failedUntil }),
  };
}

/** Adds `count` occurrences of an event to the node's own document, bounded to {@link SECURITY_EVENTS_MAX}. */
export function recordSecurityEvent(draft: NodeStateDocument, event: { kind: string; peer: string; docId: string; reason: string; at: number; count: number }): void {
  if (draft.securityEvents === undefined) draft.securityEvents = {};
  const key = `${event.kind}|${event.peer}|${event.docId}`;
  const current = draft.securityEvents[key];
  if (current !== undefined) {
    current.count += event.count;
    current.lastAt = event.at;
    if (String(current.reason) !== event.reason) current.reason = str(event.reason.slice(0, 500));
    return;
  }
  const keys = Object.keys(draft.securityEvents);
  if (keys.length >= SECURITY_EVENTS_MAX) {
    const oldest = keys.reduce((a, b) => (draft.securityEvents![a]!.lastAt <= draft.securityEvents![b]!.lastAt ? a : b));
    delete draft.securityEvents[oldest];
  }
  draft.securityEvents[key] = { kind: str(event.kind), peer: str(event.peer), docId: str(event.docId), reason: str(event.reason.slice(0, 500)), firstAt: event.at, lastAt: event.at, count: event.count };
}

const str = (value: string): ImmutableString => new ImmutableString(value);

/**
 * Writes an observation into a node's own document, touching only fields that changed, so a
 * restart with nothing new costs one small change (the start time).
 */
export function writeObservation(draft: NodeStateDocument, observation: NodeObservation): void {
  if (draft.schema !== SCHEMA_VERSIONS.node) draft.schema = SCHEMA_VERSIONS.node;
  setString(draft, 'peerId', observation.peerId);
  setString(draft, 'hostname', observation.hostname);
  setString(draft, 'arch', observation.arch);
  setString(draft, 'platform', observation.platform);
  if (observation.api === undefined) {
    if (draft.api !== undefined) delete draft.api;
  } else {
    setString(draft, 'api', observation.api);
  }
  if (draft.startedAt !== observation.startedAt) draft.startedAt = observation.startedAt;
  const versions = toPlain(draft.versions ?? {}) as Record<string, string>;
  if (draft.versions === undefined || !sameRecord(versions, observation.versions)) {
    draft.versions = Object.fromEntries(Object.entries(observation.versions).map(([k, v]) => [k, str(v)]));
  }
  const addrs = (toPlain(draft.addrs ?? []) as string[]) ?? [];
  if (draft.addrs === undefined || addrs.join('\n') !== observation.addrs.join('\n')) draft.addrs = observation.addrs.map(str);
}

type StringField = 'peerId' | 'hostname' | 'arch' | 'platform' | 'api';

function setString(draft: NodeStateDocument, field: StringField, value: string): void {
  const current = draft[field];
  if (current === undefined || String(current) !== value) draft[field] = str(value);
}

function sameRecord(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => a[k] === b[k]);
}

/** Records, in the admitting node's own document, that it admitted a node with a grant. */
export function recordAdmission(draft: NodeStateDocument, admission: AdmissionView): void {
  if (draft.admissions === undefined) draft.admissions = {};
  const grant: Record<string, ImmutableString | number> = {
    fleetId: str(admission.grant.fleetId),
    tokenHash: str(admission.grant.tokenHash),
    expiresAt: admission.grant.expiresAt,
    operator: str(admission.grant.operator),
    signature: str(admission.grant.signature),
  };
  if (admission.grant.name !== undefined) grant['name'] = str(admission.grant.name);
  draft.admissions[admission.tokenHash] = { peerId: str(admission.peerId), name: str(admission.name), admittedAt: admission.admittedAt, grant };
}

/** Reads a node's document into plain data; undefined if it is empty or not a node document. */
export function readNodeState(doc: unknown): NodeStateView | undefined {
  if (typeof doc !== 'object' || doc === null) return undefined;
  const root = toPlain(doc) as Record<string, unknown>;
  if (typeof root['peerId'] !== 'string' || typeof root['schema'] !== 'number') return undefined;
  const versions = typeof root['versions'] === 'object' && root['versions'] !== null ? (root['versions'] as Record<string, unknown>) : {};
  return {
    schema: root['schema'],
    peerId: root['peerId'],
    hostname: typeof root['hostname'] === 'string' ? root['hostname'] : '',
    arch: typeof root['arch'] === 'string' ? root['arch'] : '',
    platform: typeof root['platform'] === 'string' ? root['platform'] : '',
    versions: Object.fromEntries(Object.entries(versions).filter((e): e is [string, string] => typeof e[1] === 'string')),
    addrs: Array.isArray(root['addrs']) ? root['addrs'].filter((a): a is string => typeof a === 'string') : [],
    ...(typeof root['api'] === 'string' ? { api: root['api'] } : {}),
    startedAt: typeof root['startedAt'] === 'number' ? root['startedAt'] : 0,
    admissions: readAdmissions(root['admissions']),
    securityEvents: readSecurityEvents(root['securityEvents']),
    singletons: readActivations(root['singletons']),
    modules: readModules(root['modules']),
    ...(typeof (root['modulesProblem'] as { reason?: unknown } | undefined)?.reason === 'string' ? { modulesProblem: (root['modulesProblem'] as { reason: string }).reason } : {}),
  };
}

function readActivations(value: unknown): Record<string, ActivationRecord> {
  if (typeof value !== 'object' || value === null) return {};
  const out: Record<string, ActivationRecord> = {};
  for (const [name, raw] of Object.entries(value as Record<string, unknown>)) {
    const r = raw as Record<string, unknown>;
    if (typeof r !== 'object' || r === null || typeof r['epoch'] !== 'number' || typeof r['since'] !== 'number' || typeof r['active'] !== 'boolean') continue;
    out[name] = {
      epoch: r['epoch'],
      since: r['since'],
      active: r['active'],
      ...(typeof r['until'] === 'number' ? { until: r['until'] } : {}),
      ...(typeof r['reason'] === 'string' ? { reason: r['reason'] } : {}),
      ...(typeof r['failedUntil'] === 'number' ? { failedUntil: r['failedUntil'] } : {}),
    };
  }
  return out;
}

/** A peer's report read through the inventory's checks: an entry that fails them is no evidence. */
function readModules(value: unknown): Record<string, ReportedModule> {
  if (typeof value !== 'object' || value === null) return {};
  const out: Record<string, ReportedModule> = {};
  for (const [name, raw] of Object.entries(value as Record<string, unknown>).slice(0, CATALOG_LIMITS.inventoryModulesMax)) {
    const m = raw as Record<string, unknown>;
    if (typeof m !== 'object' || m === null || typeof m['digest'] !== 'string' || !DIGEST_PATTERN.test(m['digest'])) continue;
    if (typeof m['since'] !== 'number' || !Number.isSafeInteger(m['since']) || m['since'] < 0 || name.length > CATALOG_LIMITS.nameCharsMax || !NAME_PATTERN.test(name)) continue;
    out[name] = { digest: m['digest'], since: m['since'] };
  }
  return out;
}

function readSecurityEvents(value: unknown): SecurityEventView[] {
  if (typeof value !== 'object' || value === null) return [];
  const out: SecurityEventView[] = [];
  for (const raw of Object.values(value as Record<string, unknown>)) {
    const e = raw as Record<string, unknown>;
    if (typeof e !== 'object' || e === null) continue;
    if (typeof e['kind'] !== 'string' || typeof e['peer'] !== 'string' || typeof e['docId'] !== 'string' || typeof e['reason'] !== 'string') continue;
    if (typeof e['firstAt'] !== 'number' || typeof e['lastAt'] !== 'number' || typeof e['count'] !== 'number') continue;
    out.push({ kind: e['kind'], peer: e['peer'], docId: e['docId'], reason: e['reason'], firstAt: e['firstAt'], lastAt: e['lastAt'], count: e['count'] });
  }
  return out.sort((a, b) => b.lastAt - a.lastAt);
}

function readAdmissions(value: unknown): AdmissionView[] {
  if (typeof value !== 'object' || value === null) return [];
  const out: AdmissionView[] = [];
  for (const [tokenHash, raw] of Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1))) {
    const a = raw as Record<string, unknown>;
    const g = (a['grant'] ?? {}) as Record<string, unknown>;
    const text = (x: unknown): x is string => typeof x === 'string';
    if (!text(a['peerId']) || !text(a['name']) || typeof a['admittedAt'] !== 'number') continue;
    if (!text(g['fleetId']) || !text(g['tokenHash']) || typeof g['expiresAt'] !== 'number' || !text(g['operator']) || !text(g['signature'])) continue;
    const grant: StoredGrant = {
      fleetId: g['fleetId'],
      tokenHash: g['tokenHash'],
      expiresAt: g['expiresAt'],
      operator: g['operator'],
      signature: g['signature'],
      ...(text(g['name']) ? { name: g['name'] } : {}),
    };
    out.push({ tokenHash, peerId: a['peerId'], name: a['name'], admittedAt: a['admittedAt'], grant });
  }
  return out;
}
