import type { DecisionBody, DecisionKind, Revocation } from '../crdt-schema/index.ts';
import { signDecision } from '../mesh/index.ts';
import type { ApiClient } from './api-client.ts';
import type { OperatorKeyFile } from './key-files.ts';

/** What a node answers to a decision: the node it concerns, as the fleet now sees it. */
export interface DecisionResult {
  readonly decision: string;
  readonly node: string;
  readonly labels: Record<string, string>;
  readonly revoked: Revocation | null;
}

let lastAt = 0;

/**
 * Signs an operator decision here, where the key is, and hands it to the node named by `client`,
 * which checks it and records it in the fleet document. The node never sees the operator key.
 */
export async function decide<K extends DecisionKind>(
  client: ApiClient,
  key: OperatorKeyFile & { readonly seed: Uint8Array },
  kind: K,
  content: DecisionBody<K>,
): Promise<DecisionResult> {
  // Decisions apply in time order (ties by signature): one process never dates two alike.
  lastAt = Math.max(Date.now(), lastAt + 1);
  const decision = signDecision({ seed: key.seed, publicKey: key.publicKey }, key.fleetId, kind, content, lastAt);
  return client.post<DecisionResult>('/api/v1/decisions', decision);
}
