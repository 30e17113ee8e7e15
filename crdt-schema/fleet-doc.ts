import { ImmutableString } from '@automerge/automerge';
import { type FleetId, PEER_ID_PATTERN } from './ids.ts';
import { InvalidLabelError, LABELS_PER_NODE_MAX, checkLabelKey, checkLabelValue } from './labels.ts';
import { toPlain } from './plain.ts';
import { SCHEMA_VERSIONS } from './schema.ts';

/** An operator key certified by the fleet root key. */
export interface OperatorView {
  readonly publicKey: string;
  readonly name: string;
  readonly addedAt: number;
  /** Root signature over the operator certificate statement (base64url). */
  readonly certificate: string;
}

/** The node that created the fleet: the first member, admitted by the root key at `fleet init`. */
export interface FounderView {
  readonly peerId: string;
  readonly name: string;
  readonly at: number;
}

/** The fleet document as plain data. Malformed entries (from a faulty writer) are left out. */
export interface FleetView {
  readonly schema: number;
  readonly fleetId: FleetId;
  readonly name: string;
  readonly createdAt: number;
  readonly rootKey: string;
  readonly operators: readonly OperatorView[];
  readonly founder: FounderView;
  /** Operator-set labels by member peer id. Membership itself comes from admission records. */
  readonly labels: Readonly<Record<string, Readonly<Record<string, string>>>>;
}

/** The fleet document as Automerge holds it (what change callbacks receive). */
export interface FleetDocument {
  schema: number;
  fleetId: ImmutableString;
  name: ImmutableString;
  createdAt: number;
  rootKey: ImmutableString;
  operators: Record<string, { name: ImmutableString; addedAt: number; certificate: ImmutableString }>;
  founder: { peerId: ImmutableString; name: ImmutableString; at: number };
  labels: Record<string, Record<string, ImmutableString>>;
}

export interface FleetFounding {
  readonly fleetId: FleetId;
  readonly name: string;
  readonly createdAt: number;
  readonly rootKey: string;
  readonly operator: OperatorView;
  readonly founder: { readonly peerId: string; readonly name: string };
}

const str = (value: string): ImmutableString => new ImmutableString(value);

/** Fills an empty document with a new fleet: its root key, first operator and founding member. */
export function foundFleet(draft: FleetDocument, founding: FleetFounding): void {
  draft.schema = SCHEMA_VERSIONS.fleet;
  draft.fleetId = str(founding.fleetId);
  draft.name = str(founding.name);
  draft.createdAt = founding.createdAt;
  draft.rootKey = str(founding.rootKey);
  draft.operators = {};
  draft.labels = {};
  addOperator(draft, founding.operator);
  draft.founder = { peerId: str(founding.founder.peerId), name: str(founding.founder.name), at: founding.createdAt };
}

export function addOperator(draft: FleetDocument, operator: OperatorView): void {
  draft.operators[operator.publicKey] = {
    name: str(operator.name),
    addedAt: operator.addedAt,
    certificate: str(operator.certificate),
  };
}

/** Thrown when a label change names a peer that is not a member. */
export class UnknownMemberError extends Error {
  override name = 'UnknownMemberError';
}

/**
 * Sets and removes labels on a member (the caller checks membership, which admission records
 * decide). Validates everything before changing anything.
 */
export function setLabels(draft: FleetDocument, peerId: string, set: Readonly<Record<string, string>>, remove: readonly string[]): void {
  if (draft.labels === undefined) draft.labels = {};
  if (draft.labels[peerId] === undefined) draft.labels[peerId] = {};
  const member = { labels: draft.labels[peerId]! };
  for (const [key, value] of Object.entries(set)) {
    checkLabelKey(key);
    checkLabelValue(key, value);
  }
  for (const key of remove) checkLabelKey(key);
  const after = new Set([...Object.keys(member.labels), ...Object.keys(set)]);
  for (const key of remove) after.delete(key);
  if (after.size > LABELS_PER_NODE_MAX) throw new InvalidLabelError(`a node can carry at most ${LABELS_PER_NODE_MAX} labels`);
  for (const [key, value] of Object.entries(set)) {
    if (String(member.labels[key] ?? '') !== value || member.labels[key] === undefined) member.labels[key] = str(value);
  }
  for (const key of remove) delete member.labels[key];
}

/** Reads the fleet document into plain data, leaving out entries that do not have the right shape. */
export function readFleet(doc: unknown): FleetView | undefined {
  if (typeof doc !== 'object' || doc === null) return undefined;
  const root = toPlain(doc) as Record<string, unknown>;
  if (typeof root['fleetId'] !== 'string' || typeof root['schema'] !== 'number') return undefined;
  return {
    schema: root['schema'],
    fleetId: root['fleetId'] as FleetId,
    name: stringOr(root['name'], ''),
    createdAt: numberOr(root['createdAt'], 0),
    rootKey: stringOr(root['rootKey'], ''),
    operators: entries(root['operators']).flatMap(([publicKey, v]) =>
      typeof v['name'] === 'string' && typeof v['certificate'] === 'string'
        ? [{ publicKey, name: v['name'], addedAt: numberOr(v['addedAt'], 0), certificate: v['certificate'] }]
        : [],
    ),
    founder: readFounder(root['founder']),
    labels: Object.fromEntries(entries(root['labels']).flatMap(([peerId, v]) => (PEER_ID_PATTERN.test(peerId) ? [[peerId, stringMap(v)]] : []))),
  };
}

function readFounder(value: unknown): FounderView {
  const v = typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {};
  return { peerId: stringOr(v['peerId'], ''), name: stringOr(v['name'], ''), at: numberOr(v['at'], 0) };
}

function entries(value: unknown): Array<[string, Record<string, unknown>]> {
  if (typeof value !== 'object' || value === null) return [];
  return Object.entries(value as Record<string, unknown>)
    .filter((entry): entry is [string, Record<string, unknown>] => typeof entry[1] === 'object' && entry[1] !== null)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

function stringMap(value: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (typeof value !== 'object' || value === null) return out;
  for (const [key, v] of Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (typeof v === 'string') out[key] = v;
  }
  return out;
}

function stringOr(value: unknown, fallback: string): string {
  return typeof value === 'string' ? value : fallback;
}

function numberOr(value: unknown, fallback: number): number {
  return typeof value === 'number' ? value : fallback;
}
