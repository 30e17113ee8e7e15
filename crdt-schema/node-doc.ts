import { ImmutableString } from '@automerge/automerge';
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

export interface NodeStateView extends NodeObservation {
  readonly schema: number;
}

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
  };
}
