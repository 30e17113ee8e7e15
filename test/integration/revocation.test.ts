import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiClient } from '../../agent/api-client.ts';
import { type CliFleet, type NodeProcess as NodeProcessType, NodeProcess, type Status, cli, eventually, startCliFleet } from '../helpers/cli-fleet.ts';

/** Five real node processes on 127.0.0.1; one is revoked through the CLI. */
describe('revoking a node in a five-process fleet', () => {
  let fleet: CliFleet;
  let root: { path: string };
  let operatorKey: string;
  let nodes: NodeProcessType[] = [];
  let clients: ApiClient[] = [];

  beforeAll(async () => {
    fleet = await startCliFleet(5, 'powernode-revoke-');
    ({ operatorKey, nodes, clients } = fleet);
    root = { path: fleet.root };
  }, 120_000);

  afterAll(async () => {
    await fleet?.stop();
  });

  it('disconnects the revoked node everywhere within 5 s, and keeps it out after it restarts', async () => {
    const revoked = nodes[4]!.ready.peerId;
    const started = Date.now();
    const result = await cli(['node', 'revoke', '--api', nodes[1]!.ready.api, '--key', operatorKey, '--reason', 'decommissioned', revoked]);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/revoked/);
    const cutOff = await Promise.all(
      [0, 1, 2, 3].map((i) =>
        eventually(
          async () => {
            const s = await clients[i]!.get<Status>('/api/v1/status');
            return s.connectedPeers.includes(revoked) || s.members.some((m) => m.peerId === revoked) ? undefined : Date.now() - started;
          },
          10_000,
          `node ${i} dropped the revoked node`,
          50,
        ),
      ),
    );
    if (process.env['SHOW_FIGURES'] !== undefined) process.stderr.write(`revocation cut-off per node (ms from the CLI call): ${cutOff.join(', ')}\n`);
    expect(Math.max(...cutOff)).toBeLessThanOrEqual(5_000);

    // It learned why: from the revocation itself, or from the members that cut it off.
    const told = await eventually(async () => {
      const own = await clients[4]!.get<Status & { self: { revoked?: { reason: string }; credential?: { refusedBy?: Record<string, string> } } }>('/api/v1/status');
      const reasons = [own.self.revoked?.reason ?? '', ...Object.values(own.self.credential?.refusedBy ?? {})];
      return reasons.some((reason) => reason.includes('decommissioned')) ? reasons : undefined;
    }, 5_000, 'the revoked node told why');
    expect(told.length).toBeGreaterThan(0);

    // Restarted with its old credential and data, it reaches no one.
    await nodes[4]!.stop();
    nodes[4] = await NodeProcess.start(join(root.path, 'n4')).catch((error: unknown) => {
      throw new Error(`the revoked node should still start (and stay alone): ${String(error)}`);
    });
    clients[4] = await nodes[4].client(operatorKey);
    // For 3 s: no member holds a connection to it (its dials are refused right after Noise) and it
    // receives no sync byte.
    for (let sample = 0; sample < 15; sample++) {
      for (let i = 0; i < 4; i++) expect((await clients[i]!.get<Status>('/api/v1/status')).connectedPeers).not.toContain(revoked);
      const own = await clients[4].get<Status & { peers: Array<{ bytesIn: number }>; self: { revoked?: { reason: string }; credential?: { refusedBy?: Record<string, string> } } }>('/api/v1/status');
      expect(own.peers.reduce((sum, p) => sum + p.bytesIn, 0)).toBe(0);

      await new Promise((r) => setTimeout(r, 200));
    }

    // Operators see why; a second revocation of it is refused with a message.
    const again = await cli(['node', 'revoke', '--api', nodes[0]!.ready.api, '--key', operatorKey, revoked]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/is revoked/);
    const bad = await cli(['node', 'revoke', '--api', nodes[0]!.ready.api, '--key', operatorKey, 'not-a-peer']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/peer id/);
  }, 60_000);
});
