import type { Member, MemberState, NodeStatus } from '../src/lib/types.ts';

const BASE58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';

/** A peer id shaped like a real one, distinct per index. */
export function peerId(index: number): string {
  let suffix = '';
  let n = index;
  do {
    suffix = BASE58[n % 58] + suffix;
    n = Math.floor(n / 58);
  } while (n > 0);
  return `12D3KooW${'x'.repeat(44 - suffix.length)}${suffix}`;
}

export function member(index: number, overrides: Partial<Member> = {}): Member {
  const states: MemberState[] = ['alive', 'alive', 'alive', 'suspect', 'dead'];
  return {
    peerId: peerId(index),
    name: `node-${String(index).padStart(4, '0')}`,
    state: states[index % states.length]!,
    connected: index % 2 === 0,
    self: index === 0,
    labels: index % 10 === 0 ? { role: 'gateway', zone: `eu-${index % 3}` } : { zone: `eu-${index % 3}` },
    joinedAt: 1_800_000_000_000,
    hostname: `host-${index}`,
    arch: 'x64',
    addrs: [`/ip4/127.0.0.1/tcp/${10_000 + index}`],
    api: `http://127.0.0.1:${20_000 + index}`,
    startedAt: 1_800_000_000_000,
    ...overrides,
  };
}

export function status(members: readonly Member[], overrides: Partial<NodeStatus> = {}): NodeStatus {
  return {
    fleetId: 'ab'.repeat(16),
    fleetName: 'test-fleet',
    self: { peerId: members[0]?.peerId ?? peerId(0), addrs: [], api: 'http://127.0.0.1:7420', startedAt: 1_800_000_000_000 },
    members,
    docs: [],
    docProblems: [],
    peers: [],
    connectedPeers: [],
    ...overrides,
  };
}
