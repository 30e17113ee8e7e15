import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { FleetId, FleetView } from '../../crdt-schema/index.ts';
import { decisionBody as schemaDecisionBody } from '../../crdt-schema/index.ts';
import { writeOperatorKeyFile, writeRootKeyFile } from '../../agent/key-files.ts';
import type { FleetEvent as NodeFleetEvent, InstanceRecord, TaskStatus as NodeTaskStatus, TemplatePreview as NodeTemplatePreview } from '../../crdt-schema/index.ts';
import type { catalogAnswer } from '../../agent/api/catalog-routes.ts';
import type { MemberStatus, SessionStats } from '../../mesh/index.ts';
import { AUTH_HEADERS as NODE_AUTH_HEADERS, RequestVerifier, SeededRandom, certifyOperator, decisionProblem, generateKeyPair, requestStatement as meshStatement, signDecision as meshSignDecision, toBase64Url } from '../../mesh/index.ts';
import type { CatalogAnswer, FleetEvent, InstanceTransition, Member, PeerSession, TaskStatus, TemplatePreview } from '../../console/src/lib/types.ts';
import { KeyImportError, importOperatorKey, parseOperatorKeyFile } from '../../console/src/lib/operator-key.ts';
import { AUTH_HEADERS, decisionBody, requestStatement, signDecision, signRequest } from '../../console/src/lib/signing.ts';
import { tempDir } from '../helpers/temp-dir.ts';

/**
 * The console signs in the browser with WebCrypto; the node checks with mesh/trust. These tests
 * hold the two to the same bytes: a key file the CLI wrote, requests and decisions the console
 * signed, checked by the node's own verifiers (Node's WebCrypto stands in for the browser's).
 */
const random = new SeededRandom(42);
const root = generateKeyPair(random);
const keys = generateKeyPair(random);
const fleetId = 'cd'.repeat(16) as FleetId;
const operator = certifyOperator(root.seed, fleetId, { publicKey: toBase64Url(keys.publicKey), name: 'ops', addedAt: 5 });
const fleet: FleetView = { schema: 1, fleetId, name: 'f', createdAt: 1, rootKey: toBase64Url(root.publicKey), operators: [operator], founder: { peerId: 'F', name: 'f', at: 1 }, labels: {}, revoked: {}, decisionCount: 0 };
const PEER = '12D3KooWLRPJAA5o6Xg3pYsZMcXMi9P4ynbBnVJVhVYQKTQbXnzH';

async function keyFileText(): Promise<string> {
  const dir = await tempDir('powernode-console-key-');
  try {
    await writeOperatorKeyFile(join(dir.path, 'operator.key'), fleetId, keys, operator);
    return await readFile(join(dir.path, 'operator.key'), 'utf8');
  } finally {
    await dir.remove();
  }
}

// The console keeps its own copy of the API's shapes (it talks to nodes only through the API);
// these compile only while what a node sends still fits what the console reads.
export const nodeShapesFitTheConsole = {
  member: (m: MemberStatus): Member => m,
  session: (p: SessionStats & { connected: boolean }): PeerSession => p,
  event: (e: NodeFleetEvent): FleetEvent => e,
  task: (t: NodeTaskStatus): TaskStatus => t,
  transition: (t: InstanceRecord['transitions'][number]): InstanceTransition => t,
  catalog: (c: ReturnType<typeof catalogAnswer>): CatalogAnswer => c,
  preview: (p: NodeTemplatePreview): TemplatePreview => p,
};

describe('signing in the browser, as the CLI signs', () => {
  it('sends the signature in the headers the node reads', () => {
    expect(AUTH_HEADERS).toEqual(NODE_AUTH_HEADERS);
  });

  it('imports the CLI\'s operator key file as a non-extractable key', async () => {
    const signer = await importOperatorKey(parseOperatorKeyFile(await keyFileText()));
    expect(signer.publicKey).toBe(operator.publicKey);
    expect(signer.fleetId).toBe(fleetId);
    expect(signer.privateKey.extractable).toBe(false);
    expect(signer.privateKey.usages).toEqual(['sign']);
    await expect(crypto.subtle.exportKey('pkcs8', signer.privateKey)).rejects.toThrow();
  });

  it('makes the same request statement as the node', async () => {
    for (const parts of [
      { method: 'get', path: '/api/v1/status', timeMs: 1_800_000_000_000, nonce: 'abcdefghijklmnopqrstuvwx', body: '' },
      { method: 'POST', path: '/api/v1/events?kind=member.dead&limit=20', timeMs: 7, nonce: 'n'.repeat(24), body: '{"a":"é ✓"}' },
    ]) {
      expect(await requestStatement(parts)).toBe(new TextDecoder().decode(meshStatement(parts)));
    }
  });

  it('signs requests the node\'s verifier accepts, and only for what was signed', async () => {
    const signer = await importOperatorKey(parseOperatorKeyFile(await keyFileText()));
    const now = 1_800_000_000_000;
    const verifier = new RequestVerifier();
    const body = '{"kind":"labels"}';
    const signed = await signRequest(signer, 'POST', '/api/v1/decisions', body, now);
    expect(verifier.verify(fleet, now, signed, { method: 'POST', path: '/api/v1/decisions', body }).publicKey).toBe(operator.publicKey);
    const other = await signRequest(signer, 'GET', '/api/v1/status', '', now);
    expect(() => verifier.verify(fleet, now, other, { method: 'GET', path: '/api/v1/events', body: '' })).toThrow(/does not verify/);
  });

  it('writes decision bodies in the canonical form the node requires', () => {
    const labels = { node: PEER, set: { zone: 'eu-1', role: 'gateway', a: '' }, remove: ['tier', 'old', 'tier'] };
    expect(decisionBody({ kind: 'labels', content: labels })).toBe(schemaDecisionBody('labels', labels));
    const revoke = { node: PEER, reason: 'stolen laptop' };
    expect(decisionBody({ kind: 'revoke-node', content: revoke })).toBe(schemaDecisionBody('revoke-node', revoke));
  });

  it('signs decisions byte for byte as the CLI does, and the node takes them', async () => {
    const signer = await importOperatorKey(parseOperatorKeyFile(await keyFileText()));
    const content = { node: PEER, set: { role: 'gateway' }, remove: [] };
    const browser = await signDecision(signer, { kind: 'labels', content }, 1_800_000_000_000);
    const cli = meshSignDecision({ seed: keys.seed, publicKey: operator.publicKey }, fleetId, 'labels', content, browser.at);
    expect(browser).toEqual(cli);
    expect(decisionProblem(fleet, browser)).toBeUndefined();
    const revoke = await signDecision(signer, { kind: 'revoke-node', content: { node: PEER, reason: '' } }, 1_800_000_000_000);
    expect(revoke.at).toBeGreaterThan(browser.at);
    expect(decisionProblem(fleet, revoke)).toBeUndefined();
  });

  it('refuses a root key, a damaged key and a file that is no key, saying which', async () => {
    const dir = await tempDir('powernode-console-root-');
    try {
      await writeRootKeyFile(join(dir.path, 'root.key'), fleetId, root);
      expect(() => parseOperatorKeyFile('not json')).toThrow(/not JSON/);
      const rootText = await readFile(join(dir.path, 'root.key'), 'utf8');
      expect(() => parseOperatorKeyFile(rootText)).toThrow(/root key, not an operator key/);
    } finally {
      await dir.remove();
    }
    const file = parseOperatorKeyFile(await keyFileText());
    const mismatched = { ...file, publicKey: toBase64Url(root.publicKey) };
    await expect(importOperatorKey(mismatched)).rejects.toThrow(KeyImportError);
    await expect(importOperatorKey(mismatched)).rejects.toThrow(/do not match/);
    expect(() => parseOperatorKeyFile(JSON.stringify({ ...file, kind: 'powernode-operator-key', version: 1, publicKey: 'bad key!' }))).toThrow(/damaged/);
  });
});
