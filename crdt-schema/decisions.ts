import { ImmutableString } from '@automerge/automerge';
import { PEER_ID_PATTERN } from './ids.ts';
import { InvalidLabelError, LABELS_PER_NODE_MAX, checkLabelKey, checkLabelValue } from './labels.ts';

/**
 * An operator decision: what an operator decided (`kind`, `body`), when (`at`, the operator's
 * clock), signed with the operator's key where the key is (CLI, console). Decisions are the only
 * thing the fleet document gains after it is founded, so a member that relays or stores them
 * cannot forge or alter one (docs/SECURITY.md §Write authority).
 */
export interface Decision {
  readonly kind: DecisionKind;
  readonly at: number;
  /** Canonical JSON of the decision's content (see {@link parseDecisionBody}). */
  readonly body: string;
  /** The deciding operator's public key (base64url). */
  readonly operator: string;
  /** base64url Ed25519 signature over {@link decisionStatement}. */
  readonly signature: string;
}

export const DECISION_KINDS = ['labels', 'revoke-node', 'operator-add', 'operator-revoke'] as const;
export type DecisionKind = (typeof DECISION_KINDS)[number];

/** Set and remove labels on a node. */
export interface LabelsDecision {
  readonly node: string;
  readonly set: Readonly<Record<string, string>>;
  readonly remove: readonly string[];
}

/** Revoke a node: it is disconnected everywhere and never admitted again. */
export interface RevokeDecision {
  readonly node: string;
  readonly reason: string;
}

/** Add an operator: its key with the certificate the fleet root key signed (operator-auth.ts). */
export interface OperatorAddDecision {
  readonly publicKey: string;
  readonly name: string;
  readonly addedAt: number;
  readonly certificate: string;
}

/**
 * Revoke an operator from `effectiveAt` on: its decisions dated from then are not applied and it
 * may no longer act. Only the fleet root key can: `rootSignature` covers key, time and reason.
 */
export interface OperatorRevokeDecision {
  readonly publicKey: string;
  readonly effectiveAt: number;
  readonly reason: string;
  /**
   * The heads of `desired/catalog` where the revocation was made (docs/SECURITY.md §Operator
   * revocation): of the operator's catalog entries, only those that document held at these heads
   * count — so a leaked key cannot add entries dated before `effectiveAt` afterwards. Absent: every
   * entry dated before `effectiveAt` counts (revocations made before this field existed).
   */
  readonly catalogHeads?: readonly string[];
  /** The same for the fleet document: of the operator's decisions, only those it held at these heads apply. */
  readonly fleetHeads?: readonly string[];
  readonly rootSignature: string;
}

/** At most this many heads in a revocation's catalog cut (a document's heads are its concurrent tips: a few). */
export const REVOCATION_HEADS_MAX = 32;
const HEAD_PATTERN = /^[0-9a-f]{64}$/;

export type DecisionBody<K extends DecisionKind> = K extends 'labels'
  ? LabelsDecision
  : K extends 'revoke-node'
    ? RevokeDecision
    : K extends 'operator-add'
      ? OperatorAddDecision
      : OperatorRevokeDecision;

/** What the root key signs to revoke an operator. */
export function operatorRevocationStatement(fleetId: string, revocation: Omit<OperatorRevokeDecision, 'rootSignature'>): Uint8Array {
  const v1 = `${fleetId}\n${revocation.publicKey}\n${revocation.effectiveAt}\n${revocation.reason}`;
  // The cuts are signed too (v2): an operator relaying the decision cannot widen them.
  if (revocation.catalogHeads === undefined && revocation.fleetHeads === undefined) return encoder.encode(`powernode-operator-revocation/v1\n${v1}`);
  const cut = (heads: readonly string[] | undefined): string => (heads === undefined ? '-' : heads.join(','));
  return encoder.encode(`powernode-operator-revocation/v2\n${v1}\ncatalog ${cut(revocation.catalogHeads)}\nfleet ${cut(revocation.fleetHeads)}`);
}

/** Thrown when a decision's content is not what its kind requires. */
export class InvalidDecisionError extends Error {
  override name = 'InvalidDecisionError';
}

const MAX_BODY_CHARS = 8_192;
const MAX_REASON_CHARS = 500;
const encoder = new TextEncoder();

export function decisionStatement(fleetId: string, decision: Omit<Decision, 'signature'>): Uint8Array {
  return encoder.encode(`powernode-decision/v1\n${fleetId}\n${decision.kind}\n${decision.at}\n${decision.operator}\n${decision.body}`);
}

/** The canonical body for a decision (keys sorted), as the signer and every checker see it. */
export function decisionBody<K extends DecisionKind>(kind: K, content: DecisionBody<K>): string {
  return JSON.stringify(checkBody(kind, content));
}

/** Parses and checks a decision's body for its kind; throws {@link InvalidDecisionError}. */
export function parseDecisionBody<K extends DecisionKind>(kind: K, body: string): DecisionBody<K> {
  if (body.length > MAX_BODY_CHARS) throw new InvalidDecisionError(`a decision body is at most ${MAX_BODY_CHARS} characters`);
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    throw new InvalidDecisionError('a decision body must be JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new InvalidDecisionError('a decision body must be an object');
  const parsed = checkBody(kind, value as DecisionBody<K>);
  if (JSON.stringify(parsed) !== body) throw new InvalidDecisionError('a decision body must be in canonical form');
  return parsed as DecisionBody<K>;
}

function checkBody<K extends DecisionKind>(kind: K, content: DecisionBody<K>): DecisionBody<K> {
  switch (kind) {
    case 'labels':
      return labelsBody(content as LabelsDecision) as DecisionBody<K>;
    case 'revoke-node':
      return revokeBody(content as RevokeDecision) as DecisionBody<K>;
    case 'operator-add':
      return operatorAddBody(content as OperatorAddDecision) as DecisionBody<K>;
    default:
      return operatorRevokeBody(content as OperatorRevokeDecision) as DecisionBody<K>;
  }
}

const KEY_PATTERN = /^[A-Za-z0-9_-]{1,200}$/;

function key(value: unknown, what: string): string {
  if (typeof value !== 'string' || !KEY_PATTERN.test(value)) throw new InvalidDecisionError(`${what} must be base64url`);
  return value;
}

function operatorAddBody(value: OperatorAddDecision): OperatorAddDecision {
  if (typeof value.name !== 'string' || value.name.length === 0 || value.name.length > 200) throw new InvalidDecisionError('an operator has a name of 1 to 200 characters');
  if (typeof value.addedAt !== 'number' || !Number.isSafeInteger(value.addedAt) || value.addedAt < 0) throw new InvalidDecisionError('addedAt is a time in ms');
  return { addedAt: value.addedAt, certificate: key(value.certificate, 'the certificate'), name: value.name, publicKey: key(value.publicKey, 'the public key') };
}

function operatorRevokeBody(value: OperatorRevokeDecision): OperatorRevokeDecision {
  const reason = value.reason ?? '';
  if (typeof reason !== 'string' || reason.length > MAX_REASON_CHARS) throw new InvalidDecisionError(`a revocation reason is text of at most ${MAX_REASON_CHARS} characters`);
  if (typeof value.effectiveAt !== 'number' || !Number.isSafeInteger(value.effectiveAt) || value.effectiveAt < 0) throw new InvalidDecisionError('effectiveAt is a time in ms');
  const catalogHeads = headsOf(value.catalogHeads, 'catalogHeads');
  const fleetHeads = headsOf(value.fleetHeads, 'fleetHeads');
  return {
    ...(catalogHeads === undefined ? {} : { catalogHeads }),
    effectiveAt: value.effectiveAt,
    ...(fleetHeads === undefined ? {} : { fleetHeads }),
    publicKey: key(value.publicKey, 'the public key'),
    reason,
    rootSignature: key(value.rootSignature, 'the root signature'),
  };
}

function headsOf(heads: unknown, name: string): string[] | undefined {
  if (heads === undefined) return undefined;
  if (!Array.isArray(heads) || heads.length > REVOCATION_HEADS_MAX || !heads.every((h) => typeof h === 'string' && HEAD_PATTERN.test(h)) || heads.some((h, i) => i > 0 && heads[i - 1]! >= h)) {
    throw new InvalidDecisionError(`${name} is a sorted list of at most ${REVOCATION_HEADS_MAX} distinct document heads (64 hex characters each)`);
  }
  return [...(heads as string[])];
}

function node(value: unknown): string {
  if (typeof value !== 'string' || !PEER_ID_PATTERN.test(value)) throw new InvalidDecisionError('a decision names a node by its peer id');
  return value;
}

function labelsBody(value: LabelsDecision): LabelsDecision {
  const set = value.set ?? {};
  const remove = value.remove ?? [];
  if (typeof set !== 'object' || set === null || Array.isArray(set)) throw new InvalidDecisionError('labels.set must be an object');
  if (!Array.isArray(remove)) throw new InvalidDecisionError('labels.remove must be a list');
  try {
    for (const [key, v] of Object.entries(set)) {
      checkLabelKey(key);
      if (typeof v !== 'string') throw new InvalidLabelError(`label ${key} must have a string value`);
      checkLabelValue(key, v);
    }
    for (const key of remove) {
      if (typeof key !== 'string') throw new InvalidLabelError('label keys are strings');
      checkLabelKey(key);
    }
  } catch (error) {
    throw new InvalidDecisionError((error as Error).message);
  }
  if (Object.keys(set).length === 0 && remove.length === 0) throw new InvalidDecisionError('a labels decision sets or removes at least one label');
  const sortedSet = Object.fromEntries(Object.entries(set).sort(([a], [b]) => (a < b ? -1 : 1)));
  return { node: node(value.node), set: sortedSet, remove: [...new Set(remove)].sort() };
}

function revokeBody(value: RevokeDecision): RevokeDecision {
  const reason = value.reason ?? '';
  if (typeof reason !== 'string' || reason.length > MAX_REASON_CHARS) throw new InvalidDecisionError(`a revocation reason is text of at most ${MAX_REASON_CHARS} characters`);
  return { node: node(value.node), reason };
}

/** The decisions as the fleet document holds them, keyed by signature. */
export type DecisionsMap = Record<string, { kind: ImmutableString; at: number; body: ImmutableString; operator: ImmutableString; signature: ImmutableString }>;

/** Adds a decision to the fleet document (the caller has checked it). Idempotent. */
export function recordDecision(draft: { decisions?: DecisionsMap }, decision: Decision): void {
  if (draft.decisions === undefined) draft.decisions = {};
  if (draft.decisions[decision.signature] !== undefined) return;
  const str = (value: string): ImmutableString => new ImmutableString(value);
  draft.decisions[decision.signature] = {
    kind: str(decision.kind),
    at: decision.at,
    body: str(decision.body),
    operator: str(decision.operator),
    signature: str(decision.signature),
  };
}

/** Reads decisions from the plain fleet document; malformed entries are left out. */
export function readDecisions(value: unknown): Decision[] {
  if (typeof value !== 'object' || value === null) return [];
  const out: Decision[] = [];
  for (const [key, raw] of Object.entries(value as Record<string, unknown>)) {
    if (typeof raw !== 'object' || raw === null) continue;
    const d = raw as Record<string, unknown>;
    if (!(DECISION_KINDS as readonly unknown[]).includes(d['kind']) || typeof d['at'] !== 'number') continue;
    if (typeof d['body'] !== 'string' || typeof d['operator'] !== 'string' || d['signature'] !== key) continue;
    out.push({ kind: d['kind'] as DecisionKind, at: d['at'], body: d['body'], operator: d['operator'], signature: key });
  }
  return out.sort(decisionOrder);
}

/** Decisions apply in this order: by time, then signature (the same on every node). */
export function decisionOrder(a: Decision, b: Decision): number {
  return a.at - b.at || (a.signature < b.signature ? -1 : a.signature > b.signature ? 1 : 0);
}

/**
 * Operators added by decisions, and revocations of operators (the root signature of each was
 * checked before the decision was taken in). Decisions by a revoked operator dated from its
 * revocation on are not applied ({@link effectiveDecisions}).
 */
export function foldOperators(decisions: readonly Decision[]): {
  added: OperatorAddDecision[];
  revokedAt: Record<string, number>;
  catalogCuts: Record<string, readonly string[]>;
  fleetCuts: Record<string, readonly string[]>;
} {
  const added = new Map<string, OperatorAddDecision>();
  const revokedAt: Record<string, number> = {};
  // The cuts of the revocation that applies (the earliest; the first of equals, in decision order).
  const catalogCuts: Record<string, readonly string[]> = {};
  const fleetCuts: Record<string, readonly string[]> = {};
  for (const decision of decisions) {
    try {
      if (decision.kind === 'operator-add') {
        const body = parseDecisionBody('operator-add', decision.body);
        if (!added.has(body.publicKey)) added.set(body.publicKey, body);
      } else if (decision.kind === 'operator-revoke') {
        const body = parseDecisionBody('operator-revoke', decision.body);
        const earlier = revokedAt[body.publicKey];
        if (earlier === undefined || body.effectiveAt < earlier) {
          revokedAt[body.publicKey] = body.effectiveAt;
          if (body.catalogHeads === undefined) delete catalogCuts[body.publicKey];
          else catalogCuts[body.publicKey] = body.catalogHeads;
          if (body.fleetHeads === undefined) delete fleetCuts[body.publicKey];
          else fleetCuts[body.publicKey] = body.fleetHeads;
        }
      }
    } catch {
      // Not applied.
    }
  }
  return { added: [...added.values()], revokedAt, catalogCuts, fleetCuts };
}

/**
 * The decisions that apply: all but those an operator made on or after its revocation, and a
 * revoked operator's that are outside its revocation's cut (`kept`: the decisions the fleet
 * document held at the heads the revocation names, where known).
 */
export function effectiveDecisions(decisions: readonly Decision[], revokedAt: Readonly<Record<string, number>>, kept: (operator: string) => ReadonlySet<string> | undefined = () => undefined): Decision[] {
  return decisions.filter((d) => d.kind === 'operator-revoke' || revokedAt[d.operator] === undefined || (d.at < revokedAt[d.operator]! && kept(d.operator)?.has(d.signature) !== false));
}

/** Labels by node after applying the labels decisions in order (a later decision wins per key). */
export function foldLabels(decisions: readonly Decision[]): Record<string, Record<string, string>> {
  const labels: Record<string, Record<string, string>> = {};
  for (const decision of decisions) {
    if (decision.kind !== 'labels') continue;
    let body: LabelsDecision;
    try {
      body = parseDecisionBody('labels', decision.body);
    } catch {
      continue;
    }
    const current = { ...(labels[body.node] ?? {}) };
    for (const [key, value] of Object.entries(body.set)) current[key] = value;
    for (const key of body.remove) delete current[key];
    // A decision that would carry a node past the label limit is not applied.
    if (Object.keys(current).length > LABELS_PER_NODE_MAX) continue;
    labels[body.node] = Object.fromEntries(Object.entries(current).sort(([a], [b]) => (a < b ? -1 : 1)));
  }
  return labels;
}

export interface Revocation {
  readonly at: number;
  readonly reason: string;
  /** The operator's public key. */
  readonly by: string;
}

/** Revoked nodes: the first revocation of each counts. */
export function foldRevocations(decisions: readonly Decision[]): Record<string, Revocation> {
  const revoked: Record<string, Revocation> = {};
  for (const decision of decisions) {
    if (decision.kind !== 'revoke-node') continue;
    try {
      const body = parseDecisionBody('revoke-node', decision.body);
      revoked[body.node] ??= { at: decision.at, reason: body.reason, by: decision.operator };
    } catch {
      // Not applied.
    }
  }
  return revoked;
}
