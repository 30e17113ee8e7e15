import type { DecisionBody, DecisionKind, Revocation } from '../crdt-schema/index.ts';
import { certifyOperator, generateKeyPair, signDecision, signOperatorRevocation, toBase64Url } from '../mesh/index.ts';
import { CryptoRandom } from './adapters/crypto-random.ts';
import type { ApiClient } from './api-client.ts';
import { KeyFileError } from './secret-files.ts';
import { type OperatorKeyFile, type RootKeyFile, writeOperatorKeyFile } from './key-files.ts';

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

/**
 * Certifies a new operator key with the fleet root key, writes its key file (0600, never
 * overwriting), and records the operator-add decision through the node `client` names.
 */
export async function addOperator(
  client: ApiClient,
  key: OperatorKeyFile & { readonly seed: Uint8Array },
  root: RootKeyFile & { readonly seed: Uint8Array },
  options: { readonly name: string; readonly out: string },
): Promise<{ publicKey: string; name: string; keyFile: string }> {
  if (root.fleetId !== key.fleetId) throw new KeyFileError(`the root key is for fleet ${root.fleetId}, the operator key for ${key.fleetId}`);
  const keys = generateKeyPair(new CryptoRandom());
  const operator = certifyOperator(root.seed, root.fleetId, { publicKey: toBase64Url(keys.publicKey), name: options.name, addedAt: Date.now() });
  await writeOperatorKeyFile(options.out, root.fleetId, keys, operator);
  await decide(client, key, 'operator-add', { publicKey: operator.publicKey, name: operator.name, addedAt: operator.addedAt, certificate: operator.certificate });
  return { publicKey: operator.publicKey, name: operator.name, keyFile: options.out };
}

/**
 * Revokes an operator key with the fleet root key's signature, from now on, and cuts its catalog
 * entries and decisions at what the node holds now (docs/SECURITY.md §Revocation): what it signs
 * later, dated before now, does not count.
 */
export async function revokeOperator(
  client: ApiClient,
  key: OperatorKeyFile & { readonly seed: Uint8Array },
  root: RootKeyFile & { readonly seed: Uint8Array },
  options: { readonly publicKey: string; readonly reason: string },
): Promise<DecisionResult> {
  if (root.fleetId !== key.fleetId) throw new KeyFileError(`the root key is for fleet ${root.fleetId}, the operator key for ${key.fleetId}`);
  // Where the node stands: the cut (each document joined to one head). The node records the
  // decision on top of these heads, so every replica that takes the revocation holds the fleet
  // document's cut already. A catalog the node does not hold is cut by time alone (an empty cut
  // would drop every entry of the operator's).
  const cut = await client.post<{ fleet: string[] | null; catalog: string[] | null }>('/api/v1/revocation-cut', {});
  const revocation = signOperatorRevocation(root.seed, root.fleetId, {
    publicKey: options.publicKey,
    effectiveAt: Date.now(),
    reason: options.reason,
    ...(cut.catalog === null ? {} : { catalogHeads: cut.catalog }),
    ...(cut.fleet === null ? {} : { fleetHeads: cut.fleet }),
  });
  return decide(client, key, 'operator-revoke', revocation);
}
