import { ImmutableString } from '@automerge/automerge';
import { type DecisionsMap, type Revocation, effectiveDecisions, foldLabels, foldOperators, foldRevocations, readDecisions } from './decisions.ts';
import { keysAtHeads } from './heads-cut.ts';
import type { FleetId } from './ids.ts';
import { toPlain } from './plain.ts';
import { SCHEMA_VERSIONS } from './schema.ts';

/** An operator key certified by the fleet root key. */
export interface OperatorView {
  readonly publicKey: string;
  readonly name: string;
  readonly addedAt: number;
  /** Root signature over the operator certificate statement (base64url). */
  readonly certificate: string;
  /** Set when the root key revoked it: it may not act from this time on. */
  readonly revokedAt?: number;
  /** With a revocation that names them: the `desired/catalog` heads its catalog entries are cut at. */
  readonly catalogHeads?: readonly string[];
  /** And the fleet document heads its decisions are cut at. */
  readonly fleetHeads?: readonly string[];
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
  /** Operator-set labels by node peer id, from the labels decisions. Membership itself comes from admission records. */
  readonly labels: Readonly<Record<string, Readonly<Record<string, string>>>>;
  /** Revoked nodes, from the revoke decisions. */
  readonly revoked: Readonly<Record<string, Revocation>>;
  readonly decisionCount: number;
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
  /** Operator decisions by signature; after founding, the only thing the document gains. */
  decisions: DecisionsMap;
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
  draft.decisions = {};
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

/** Thrown when a decision names a peer that is not a member. */
export class UnknownMemberError extends Error {
  override name = 'UnknownMemberError';
}

/** Reads the fleet document into plain data, leaving out entries that do not have the right shape. */
export function readFleet(doc: unknown): FleetView | undefined {
  if (typeof doc !== 'object' || doc === null) return undefined;
  const root = toPlain(doc) as Record<string, unknown>;
  if (typeof root['fleetId'] !== 'string' || typeof root['schema'] !== 'number') return undefined;
  const all = readDecisions(root['decisions']);
  const { added, revokedAt, catalogCuts, fleetCuts } = foldOperators(all);
  const decisions = effectiveDecisions(all, revokedAt, (operator) => (fleetCuts[operator] === undefined ? undefined : keysAtHeads(doc, fleetCuts[operator]!, 'decisions')));
  const founding = entries(root['operators']).flatMap(([publicKey, v]) =>
    typeof v['name'] === 'string' && typeof v['certificate'] === 'string'
      ? [{ publicKey, name: v['name'], addedAt: numberOr(v['addedAt'], 0), certificate: v['certificate'] }]
      : [],
  );
  const operators = [...founding, ...added.filter((a) => !founding.some((f) => f.publicKey === a.publicKey))].map((operator) =>
    revokedAt[operator.publicKey] === undefined
      ? operator
      : {
          ...operator,
          revokedAt: revokedAt[operator.publicKey]!,
          ...(catalogCuts[operator.publicKey] === undefined ? {} : { catalogHeads: catalogCuts[operator.publicKey]! }),
          ...(fleetCuts[operator.publicKey] === undefined ? {} : { fleetHeads: fleetCuts[operator.publicKey]! }),
        },
  );
  return {
    schema: root['schema'],
    fleetId: root['fleetId'] as FleetId,
    name: stringOr(root['name'], ''),
    createdAt: numberOr(root['createdAt'], 0),
    rootKey: stringOr(root['rootKey'], ''),
    operators,
    founder: readFounder(root['founder']),
    labels: foldLabels(decisions),
    revoked: foldRevocations(decisions),
    decisionCount: decisions.length,
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
