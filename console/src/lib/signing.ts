import { randomToken, sha256Hex, toBase64Url, utf8 } from './encoding.ts';

/**
 * The operator's signing key as the browser holds it: a non-extractable WebCrypto Ed25519 key,
 * so neither the page's scripts nor a node ever read the private key itself.
 */
export interface OperatorSigner {
  readonly privateKey: CryptoKey;
  /** base64url public key, as the fleet document lists it. */
  readonly publicKey: string;
  readonly fleetId: string;
  readonly name: string;
}

/** Headers that carry an operator's signature (mesh/trust/operator-auth.ts AUTH_HEADERS). */
export const AUTH_HEADERS = {
  key: 'x-powernode-key',
  time: 'x-powernode-time',
  nonce: 'x-powernode-nonce',
  signature: 'x-powernode-signature',
} as const;

export interface RequestSignature {
  readonly key: string;
  readonly time: string;
  readonly nonce: string;
  readonly signature: string;
}

export interface SignedRequestParts {
  readonly method: string;
  /** Path with query string, exactly as sent. */
  readonly path: string;
  readonly timeMs: number;
  readonly nonce: string;
  readonly body: string;
}

/** What an operator signs for an API request; the same text the CLI signs (operator-auth.ts). */
export async function requestStatement(parts: SignedRequestParts): Promise<string> {
  return `powernode-api/v1\n${parts.method.toUpperCase()}\n${parts.path}\n${parts.timeMs}\n${parts.nonce}\n${await sha256Hex(parts.body)}`;
}

async function sign(signer: OperatorSigner, text: string): Promise<string> {
  return toBase64Url(new Uint8Array(await crypto.subtle.sign('Ed25519', signer.privateKey, utf8(text))));
}

/** Signs one request: a fresh nonce, this moment's time. */
export async function signRequest(signer: OperatorSigner, method: string, path: string, body: string, nowMs = Date.now()): Promise<RequestSignature> {
  const nonce = randomToken(18);
  const signature = await sign(signer, await requestStatement({ method, path, timeMs: nowMs, nonce, body }));
  return { key: signer.publicKey, time: String(nowMs), nonce, signature };
}

/** Set and remove labels on a node (crdt-schema LabelsDecision). */
export interface LabelsContent {
  readonly node: string;
  readonly set: Readonly<Record<string, string>>;
  readonly remove: readonly string[];
}

/** Revoke a node for good (crdt-schema RevokeDecision). */
export interface RevokeContent {
  readonly node: string;
  readonly reason: string;
}

export type ConsoleDecision = { kind: 'labels'; content: LabelsContent } | { kind: 'revoke-node'; content: RevokeContent };

export interface SignedDecision {
  readonly kind: ConsoleDecision['kind'];
  readonly at: number;
  readonly body: string;
  readonly operator: string;
  readonly signature: string;
}

/**
 * The canonical body of a decision, as crdt-schema's decisionBody makes it: keys in a fixed
 * order, labels set sorted by key, removed keys sorted and unique. The node refuses any other
 * form, so this must match it exactly (checked against crdt-schema in the console's tests).
 */
export function decisionBody(decision: ConsoleDecision): string {
  if (decision.kind === 'labels') {
    const { node, set, remove } = decision.content;
    const sortedSet = Object.fromEntries(Object.entries(set).sort(([a], [b]) => (a < b ? -1 : 1)));
    return JSON.stringify({ node, set: sortedSet, remove: [...new Set(remove)].sort() });
  }
  return JSON.stringify({ node: decision.content.node, reason: decision.content.reason });
}

/** What an operator signs for a decision (crdt-schema decisionStatement). */
export function decisionStatement(fleetId: string, decision: Omit<SignedDecision, 'signature'>): string {
  return `powernode-decision/v1\n${fleetId}\n${decision.kind}\n${decision.at}\n${decision.operator}\n${decision.body}`;
}

let lastAt = 0;

/** Signs a decision in the browser, as agent/decisions.ts does in the CLI; never two alike in time. */
export async function signDecision(signer: OperatorSigner, decision: ConsoleDecision, nowMs = Date.now()): Promise<SignedDecision> {
  lastAt = Math.max(nowMs, lastAt + 1);
  const unsigned = { kind: decision.kind, at: lastAt, body: decisionBody(decision), operator: signer.publicKey };
  return { ...unsigned, signature: await sign(signer, decisionStatement(signer.fleetId, unsigned)) };
}
