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

export const DECISION_KINDS = ['labels', 'revoke-node'] as const;
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

export type DecisionBody<K extends DecisionKind> = K extends 'labels' ? LabelsDecision : RevokeDecision;

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
  const body = kind === 'labels' ? labelsBody(content as LabelsDecision) : revokeBody(content as RevokeDecision);
  return JSON.stringify(body);
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
  const parsed = kind === 'labels' ? labelsBody(value as LabelsDecision) : revokeBody(value as RevokeDecision);
  if (JSON.stringify(parsed) !== body) throw new InvalidDecisionError('a decision body must be in canonical form');
  return parsed as DecisionBody<K>;
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
