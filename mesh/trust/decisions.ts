import * as A from '@automerge/automerge';
import { isDeepStrictEqual } from 'node:util';
import {
  type OperatorAddDecision,
  type OperatorRevokeDecision,
  operatorRevocationStatement,
  type Decision,
  type DecisionBody,
  type DecisionKind,
  type FleetView,
  type OperatorView,
  InvalidDecisionError,
  decisionBody,
  decisionStatement,
  parseDecisionBody,
  readDecisions,
  toPlain,
} from '../../crdt-schema/index.ts';
import type { AnyDoc } from '../replication/doc-store.ts';
import { fromBase64Url, sha256Hex, signBytes, toBase64Url, verifyBytes } from './keys.ts';
import { isActiveOperator, isCertifiedOperator } from './operator-auth.ts';
import { rememberedIn } from '../bounded-map.ts';

/** Makes and signs a decision where the operator key is (CLI, console, tests). */
export function signDecision<K extends DecisionKind>(
  operator: { readonly seed: Uint8Array; readonly publicKey: string },
  fleetId: string,
  kind: K,
  content: DecisionBody<K>,
  at: number,
): Decision {
  const unsigned = { kind, at, body: decisionBody(kind, content), operator: operator.publicKey };
  return { ...unsigned, signature: toBase64Url(signBytes(operator.seed, decisionStatement(fleetId, unsigned))) };
}

/**
 * Why `decision` is not a valid operator decision of `fleet`, or undefined: its body must parse
 * for its kind and it must be signed by an operator the fleet's root key certified.
 */
export function decisionProblem(
  fleet: FleetView,
  decision: Decision,
  signatureValid = checkSignature(fleet.fleetId),
  options: { readonly activeAt?: number; readonly certified?: (operator: OperatorView) => boolean } = {},
): string | undefined {
  const certified = options.certified ?? ((operator: OperatorView) => isCertifiedOperator(fleet, operator));
  let body: DecisionBody<DecisionKind>;
  try {
    body = parseDecisionBody(decision.kind, decision.body);
  } catch (error) {
    if (error instanceof InvalidDecisionError) return error.message;
    throw error;
  }
  const operator = fleet.operators.find((o) => o.publicKey === decision.operator);
  if (operator === undefined || !certified(operator)) return 'the decision is not signed by an operator of this fleet';
  // Revocation is checked where a decision is made (the API), not where one is relayed: replicas
  // that learn of a revocation at different times must still take in the same changes.
  if (options.activeAt !== undefined && !isActiveOperator(fleet, operator, options.activeAt)) return 'that operator key was revoked by the fleet root key';
  if (!signatureValid(decision)) return 'the decision\'s signature does not verify';
  if (decision.kind === 'operator-add') {
    const added = body as OperatorAddDecision;
    if (!certified(added)) return 'the new operator\'s certificate is not signed by the fleet root key';
  }
  if (decision.kind === 'operator-revoke') {
    const revocation = body as OperatorRevokeDecision;
    const { rootSignature, ...statement } = revocation;
    let rooted = false;
    try {
      rooted = verifyBytes(fromBase64Url(fleet.rootKey), operatorRevocationStatement(fleet.fleetId, statement), fromBase64Url(rootSignature));
    } catch {
      rooted = false;
    }
    if (!rooted) return 'an operator revocation must be signed by the fleet root key';
  }
  return undefined;
}

/**
 * Why the changes from `before` to `after` of a document written only by operators (the fleet
 * document, desired documents) may not be taken, as far as changes without operations go: such a
 * change must join two or more heads (a node's `DocStore.joinHeads`). Honest nodes make no other
 * (a change that changes nothing is not written), and a member that forks empty changes could
 * otherwise give the document more heads than an operator revocation may name, or fill it
 * toward its size cap with nothing.
 */
export function emptyChangeProblem(before: AnyDoc, after: AnyDoc): string | undefined {
  for (const bytes of A.getChanges(before, after)) {
    const change = A.decodeChange(bytes);
    if (change.ops.length === 0 && change.deps.length < 2) return 'a change that changes nothing may only join heads';
  }
  return undefined;
}

/** The root key's signature for revoking an operator (made where the root key is, the CLI). */
export function signOperatorRevocation(rootSeed: Uint8Array, fleetId: string, revocation: Omit<OperatorRevokeDecision, 'rootSignature'>): OperatorRevokeDecision {
  return { ...revocation, rootSignature: toBase64Url(signBytes(rootSeed, operatorRevocationStatement(fleetId, revocation))) };
}

function checkSignature(fleetId: string): (decision: Decision) => boolean {
  return (decision) => {
    try {
      const { signature, ...unsigned } = decision;
      return verifyBytes(fromBase64Url(decision.operator), decisionStatement(fleetId, unsigned), fromBase64Url(signature));
    } catch {
      return false;
    }
  };
}

/** Caches signature verdicts of decisions and operator certificates (by signature), bounded. */
export class DecisionVerifier {
  readonly #verdicts = new Map<string, boolean>();
  readonly #certificates = new Map<string, boolean>();

  /** {@link isCertifiedOperator}, remembered per root key and certificate. */
  certified(fleet: FleetView, operator: OperatorView): boolean {
    const key = `${fleet.rootKey}/${operator.publicKey}/${operator.name}/${operator.addedAt}/${operator.certificate}`;
    return rememberedIn(this.#certificates, key, 1_000, () => isCertifiedOperator(fleet, operator));
  }

  signatureValid(fleetId: string, decision: Decision): boolean {
    // Keyed by what was signed as well as the signature: a verdict never covers other content.
    const { signature, ...unsigned } = decision;
    return this.verdict(`${sha256Hex(decisionStatement(fleetId, unsigned))}/${signature}`, () => checkSignature(fleetId)(decision));
  }

  /** The verdict remembered under `key` (a signature with what it is over), else `check()`'s, remembered. */
  verdict(key: string, check: () => boolean): boolean {
    return rememberedIn(this.#verdicts, key, 100_000, check);
  }
}

/**
 * Why the change from `before` to `after` of the fleet document may not be adopted, or undefined.
 * After founding, the document only gains decisions: the net effect of the change (Automerge's
 * diff between the two versions, so the cost follows the change, not the document) may only
 * create new entries under `decisions`, each a valid operator decision. A first copy (nothing held
 * before) is taken as its bootstrap sends it, with every decision checked.
 */
export function fleetChangeProblem(
  before: AnyDoc,
  after: AnyDoc,
  heldView: () => FleetView | undefined,
  receivedView: () => FleetView | undefined,
  verifier: DecisionVerifier,
): string | undefined {
  const empty = emptyChangeProblem(before, after);
  if (empty !== undefined) return empty;
  const held = before as unknown as { fleetId?: unknown; decisions?: Record<string, unknown> };
  let added: Record<string, unknown>;
  // A first copy holds no fleet id yet. (The id is an ImmutableString in the document: a test of
  // `typeof === 'string'` took every held copy for a first one, so a change that removed or
  // rewrote a decision passed as long as what remained was valid.)
  const firstCopy = held.fleetId === undefined;
  if (firstCopy) {
    added = (toPlain(after) as { decisions?: Record<string, unknown> }).decisions ?? {};
  } else {
    // Which decisions the change touched (a put, a delete, or a conflict Automerge reports when the
    // same decision was recorded concurrently): each must be new, or read the same as before.
    const touched = new Set<string>();
    for (const patch of A.diff(after, A.getHeads(before), A.getHeads(after))) {
      const [field, key] = patch.path;
      if (field !== 'decisions' || typeof key !== 'string') return `the fleet document's ${String(field)} may not change`;
      touched.add(key);
    }
    const decisions = (after as unknown as { decisions: Record<string, unknown> }).decisions;
    const created = new Set<string>();
    for (const key of touched) {
      const was = held.decisions?.[key];
      const now = decisions?.[key];
      if (now === undefined) return 'an operator decision may not change or disappear';
      if (was === undefined) created.add(key);
      else if (!isDeepStrictEqual(toPlain(was), toPlain(now))) return 'an operator decision may not change or disappear';
    }
    added = Object.fromEntries([...created].map((key) => [key, toPlain(decisions[key])]));
  }
  const parsed = readDecisions(added);
  if (parsed.length !== Object.keys(added).length) return 'a malformed operator decision';
  // The fleet as held knows the operators, except one added in this very change (or a first copy).
  let view = firstCopy ? receivedView() : heldView();
  if (view !== undefined && parsed.some((d) => !view!.operators.some((o) => o.publicKey === d.operator))) view = receivedView();
  if (view === undefined) return 'the fleet document is malformed';
  const fleet = view;
  for (const decision of parsed) {
    const problem = decisionProblem(fleet, decision, (d) => verifier.signatureValid(fleet.fleetId, d), { certified: (o) => verifier.certified(fleet, o) });
    if (problem !== undefined) return problem;
  }
  return undefined;
}
