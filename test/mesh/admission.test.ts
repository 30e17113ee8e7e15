import { describe, expect, it } from 'vitest';
import {
  Admission,
  type AdmissionPolicy,
  type Credential,
  type CredentialContext,
  ManualClock,
  MemoryLogger,
  MemoryNetwork,
  MemoryStorage,
  type PeerId,
  PeerPenalties,
  type SignatureCheck,
  type SignatureVerifier,
  admitProtocol,
  chainProblem,
  credentialSignatureCheck,
  decodeMessage,
  encodeMessage,
  issueCredential,
  verifyBytes,
} from '../../mesh/index.ts';
import { settle, testIdentity } from '../helpers/mini-fleet.ts';

const FLEET = '0123456789abcdef0123456789abcdef';
const HOUR = 3_600_000;
const id = (index: number) => ({ ...testIdentity(index), peerId: testIdentity(index).peerId as string });

function context(members: string[], overrides: Partial<CredentialContext> = {}): CredentialContext {
  return {
    fleetId: FLEET,
    now: 10 * HOUR,
    isMember: (peer) => members.includes(peer),
    barredReason: () => undefined,
    signatureValid: (credential) => {
      const check = credentialSignatureCheck(credential);
      return check !== undefined && verifyBytes(check.publicKey, check.message, check.signature);
    },
    ...overrides,
  };
}

const issue = (issuer: number, subject: number, issuedAt = 9 * HOUR, expiresAt = 20 * HOUR): Credential =>
  issueCredential(id(issuer), { fleetId: FLEET, peerId: id(subject).peerId, issuedAt, expiresAt });

describe('credential chains', () => {
  const [a, b, c, d] = [0, 1, 2, 3].map((i) => id(i).peerId);

  it('holds when a member this node knows vouches, directly or through the issuers it names', () => {
    expect(chainProblem(b!, [issue(0, 1)], context([a!]))).toBeUndefined();
    // c was admitted by b, which this node does not know yet; b's own credential comes along.
    expect(chainProblem(c!, [issue(1, 2), issue(0, 1)], context([a!]))).toBeUndefined();
    expect(chainProblem(c!, [issue(1, 2)], context([a!]))).toEqual({ kind: 'unknown', reason: expect.stringMatching(/no member this node knows vouches/) });
  });

  it("refuses another peer's credential, a forged or tampered one, an expired one, a barred peer and another fleet", () => {
    const valid = issue(0, 1);
    expect(chainProblem(c!, [valid], context([a!]))?.reason).toMatch(/is for .*, not /);
    const forged = issueCredential(id(3), { fleetId: FLEET, peerId: b!, issuedAt: 9 * HOUR, expiresAt: 20 * HOUR });
    expect(chainProblem(b!, [{ ...forged, issuer: a! }], context([a!]))?.reason).toMatch(/not signed by/);
    expect(chainProblem(b!, [{ ...valid, expiresAt: valid.expiresAt + HOUR }], context([a!]))?.reason).toMatch(/not signed by/);
    expect(chainProblem(b!, [issue(0, 1, 1 * HOUR, 2 * HOUR)], context([a!]))?.reason).toMatch(/expired/);
    expect(chainProblem(b!, [issue(0, 1, 12 * HOUR)], context([a!]))?.reason).toMatch(/issued in the future/);
    expect(chainProblem(b!, [valid], context([a!], { barredReason: (p) => (p === b ? 'revoked by an operator' : undefined) }))?.reason).toBe('revoked by an operator');
    expect(chainProblem(b!, [valid], context([a!], { barredReason: (p) => (p === a ? 'revoked' : undefined) }))?.kind).toBe('invalid');
    expect(chainProblem(b!, [valid], context([a!], { fleetId: 'f'.repeat(32) }))?.reason).toMatch(/for fleet/);
    expect(chainProblem(d!, [], context([a!]))?.reason).toMatch(/no credential/);
  });
});

/** Two or three Admission services on one in-memory network and virtual clock. */
class Harness {
  readonly clock = new ManualClock();
  readonly network = new MemoryNetwork();
  readonly members = new Set<string>();
  readonly admissions = new Map<number, Admission>();
  readonly penalties = new Map<number, PeerPenalties>();
  readonly admitted: string[] = [];

  async add(index: number, options: { founder?: boolean; chain?: Credential[]; lifeMs?: number; verifier?: SignatureVerifier } = {}): Promise<Admission> {
    const identity = id(index);
    const transport = this.network.createTransport(identity.peerId as PeerId);
    const penalties = new PeerPenalties({ clock: this.clock, onExceeded: () => {} });
    const policy: AdmissionPolicy = {
      isMember: (peer) => this.members.has(peer),
      isFounder: (peer) => options.founder === true && peer === identity.peerId,
      barredReason: () => undefined,
      trustedUntilRecords: () => false,
      onAdmitted: (peer) => this.admitted.push(`${index}<-${peer}`),
      hasRecords: () => true,
    };
    const admission = new Admission({
      transport,
      clock: this.clock,
      log: new MemoryLogger(),
      storage: new MemoryStorage(),
      penalties,
      identity,
      fleetId: FLEET,
      policy,
      ...(options.lifeMs === undefined ? {} : { credentialLifeMs: options.lifeMs }),
      ...(options.verifier === undefined ? {} : { verifier: options.verifier }),
    });
    await admission.load();
    if (options.chain !== undefined) await admission.adopt(options.chain);
    admission.start();
    this.admissions.set(index, admission);
    this.penalties.set(index, penalties);
    return admission;
  }

  async run(ms: number, stepMs = 100): Promise<void> {
    for (let t = 0; t < ms; t += stepMs) await this.clock.advanceAsync(stepMs, settle);
  }
}

/** A founder issuing credentials of `lifeMs`, and a member holding one, connected and admitted. */
async function founderAndMember(lifeMs: number): Promise<{ h: Harness; founder: Admission; member: Admission }> {
  const h = new Harness();
  h.members.add(id(0).peerId);
  h.members.add(id(1).peerId);
  const founder = await h.add(0, { founder: true, lifeMs });
  await h.run(100);
  const member = await h.add(1, { chain: founder.issueFor(id(1).peerId) });
  await h.network.lookup(id(1).peerId as PeerId)!.dial(id(0).peerId as PeerId, []);
  await h.run(1_000);
  return { h, founder, member };
}

describe('admission on a connection', () => {
  it('admits a member that presents its chain, and hangs up on a peer that presents none within 5 s', async () => {
    const h = new Harness();
    h.members.add(id(0).peerId);
    h.members.add(id(1).peerId);
    const founder = await h.add(0, { founder: true });
    await h.run(100);
    expect(founder.chain()[0]?.issuer).toBe(id(0).peerId);
    const member = await h.add(1, { chain: founder.issueFor(id(1).peerId) });
    const stranger = h.network.createTransport(id(9).peerId as PeerId);
    await stranger.dial(id(0).peerId as PeerId, []);
    await member.adopt(member.chain()); // presents to the founder
    await h.network.lookup(id(1).peerId as PeerId)!.dial(id(0).peerId as PeerId, []);
    await h.run(1_000);
    expect(founder.isAdmitted(id(1).peerId as PeerId)).toBe(true);
    expect(member.isAdmitted(id(0).peerId as PeerId)).toBe(true);
    expect(founder.isAdmitted(id(9).peerId as PeerId)).toBe(false);
    expect(stranger.connectedPeers()).toEqual([id(0).peerId]);

    await h.run(4_500);
    expect(stranger.connectedPeers()).toEqual([]);
    expect(h.penalties.get(0)!.snapshot().byPeer[id(9).peerId]).toMatchObject({ 'admission:timeout': 1 });
    expect(h.network.lookup(id(1).peerId as PeerId)!.connectedPeers()).toEqual([id(0).peerId]);
  });

  it("refuses a replayed credential of another member and says why", async () => {
    const h = new Harness();
    h.members.add(id(0).peerId);
    h.members.add(id(1).peerId);
    const founder = await h.add(0, { founder: true });
    await h.run(100);
    const stolen = founder.issueFor(id(1).peerId);
    const thief = h.network.createTransport(id(8).peerId as PeerId);
    const stream = await thief.openStream(id(0).peerId as PeerId, admitProtocol.id, { maxFrameBytes: admitProtocol.maxFrameBytes });
    await stream.send(encodeMessage(admitProtocol, { type: 'present', body: { chain: stolen } }));
    const answers: unknown[] = [];
    const reading = (async () => {
      for await (const frame of stream) answers.push(decodeMessage(admitProtocol, frame));
    })().catch(() => {});
    await h.run(500);
    await reading;
    expect(answers).toEqual([{ type: 'refused', body: { reason: expect.stringMatching(/credential is for .*, not /) } }]);
    expect(founder.isAdmitted(id(8).peerId as PeerId)).toBe(false);
    expect(thief.connectedPeers()).toEqual([]);
    expect(h.penalties.get(0)!.snapshot().byPeer[id(8).peerId]).toMatchObject({ 'admission:refused': 1 });
  });

  it("checks a presented chain's signatures through the signature verifier port, and refuses what it finds invalid", async () => {
    const h = new Harness();
    h.members.add(id(0).peerId);
    h.members.add(id(1).peerId);
    h.members.add(id(2).peerId);
    // A verifier that says what it was asked, and finds any signature by node 2's key invalid.
    const asked: SignatureCheck[] = [];
    const verifier: SignatureVerifier = {
      verifyBatch: async (checks) => {
        asked.push(...checks);
        return checks.map((check) => Buffer.from(check.publicKey).equals(Buffer.from(id(2).publicKey)) ? false : verifyBytes(check.publicKey, check.message, check.signature));
      },
      close: async () => {},
    };
    const founder = await h.add(0, { founder: true, verifier });
    await h.run(100);
    const member = await h.add(1, { chain: founder.issueFor(id(1).peerId) });
    const vouched = await h.add(3, { chain: [issue(2, 3)] });
    h.members.add(id(3).peerId);
    await h.network.lookup(id(1).peerId as PeerId)!.dial(id(0).peerId as PeerId, []);
    await h.network.lookup(id(3).peerId as PeerId)!.dial(id(0).peerId as PeerId, []);
    await h.run(1_000);
    expect(founder.isAdmitted(id(1).peerId as PeerId)).toBe(true);
    expect(founder.isAdmitted(id(3).peerId as PeerId)).toBe(false);
    // The signers asked about: node 0 (node 1's credential) and node 2 (node 3's).
    const signers = new Set(asked.map((check) => [0, 2].find((i) => Buffer.from(check.publicKey).equals(Buffer.from(id(i).publicKey))) ?? -1));
    expect([...signers].sort()).toEqual([0, 2]);
    expect(member.isAdmitted(id(0).peerId as PeerId)).toBe(true);
    expect(vouched.chain()).toHaveLength(1);
  });

  it('renews its credential with a member at 75 % of its life and stays admitted past the first expiry', async () => {
    const { h, founder, member } = await founderAndMember(40_000);
    const first = member.chain()[0]!;
    expect(first.expiresAt - first.issuedAt).toBe(40_000);
    await h.run(31_000); // past 75 % of 40 s
    const renewed = member.chain()[0]!;
    expect(renewed.issuedAt).toBeGreaterThan(first.issuedAt);
    expect(renewed.issuer).toBe(id(0).peerId);
    await h.run(10_000); // the first credential has expired by now
    expect(h.clock.now()).toBeGreaterThan(first.expiresAt);
    expect(founder.isAdmitted(id(1).peerId as PeerId)).toBe(true);
  });

  it('disconnects a peer whose credential lapses without renewal', async () => {
    // The member will hold a credential that no one renews (it stops being a member to the founder).
    const { h, founder, member } = await founderAndMember(40_000);
    expect(founder.isAdmitted(id(1).peerId as PeerId)).toBe(true);
    h.members.delete(id(1).peerId);
    await h.run(40_000);
    expect(member.chain()[0]!.expiresAt).toBeLessThan(h.clock.now());
    expect(founder.isAdmitted(id(1).peerId as PeerId)).toBe(false);
    expect(h.network.lookup(id(0).peerId as PeerId)!.connectedPeers()).toEqual([]);
    expect(h.penalties.get(0)!.snapshot().byPeer[id(1).peerId]).toMatchObject({ 'admission:expired': 1 });
  });
  it('disconnects each peer when its own credential lapses, an earlier and a later one alike', async () => {
    const { h, founder } = await founderAndMember(40_000);
    // Node 1 is not renewed from now on (it stops being a member to the founder): it lapses at ~40 s.
    h.members.delete(id(1).peerId);
    await h.run(31_000);
    // Past the founder's own renewal (30 s), node 2's chain lapses at ~70 s.
    h.members.add(id(2).peerId);
    await h.add(2, { chain: founder.issueFor(id(2).peerId) });
    await h.network.lookup(id(2).peerId as PeerId)!.dial(id(0).peerId as PeerId, []);
    await h.run(1_000);
    h.members.delete(id(2).peerId);
    const connected = () => h.network.lookup(id(0).peerId as PeerId)!.connectedPeers();
    expect(connected().sort()).toEqual([id(1).peerId, id(2).peerId].sort());
    await h.run(12_000); // ~45 s
    expect(founder.isAdmitted(id(1).peerId as PeerId)).toBe(false);
    expect(founder.isAdmitted(id(2).peerId as PeerId)).toBe(true);
    expect(connected()).toEqual([id(2).peerId]);
    await h.run(30_000); // ~75 s
    expect(founder.isAdmitted(id(2).peerId as PeerId)).toBe(false);
    expect(connected()).toEqual([]);
    expect(h.penalties.get(0)!.snapshot().byPeer[id(2).peerId]).toMatchObject({ 'admission:expired': 1 });
  });
});

describe('one presentation at a time', () => {
  /** Nodes 0 and 1 members; node 0 the founder, which takes 500 ms (virtual) to check each batch of signatures it has not seen. */
  async function slowFounder(): Promise<{ h: Harness; founder: Admission }> {
    const h = new Harness();
    h.members.add(id(0).peerId);
    h.members.add(id(1).peerId);
    const verifier: SignatureVerifier = {
      verifyBatch: (checks) => new Promise((resolve) => h.clock.setTimeout(() => resolve(checks.map((c) => verifyBytes(c.publicKey, c.message, c.signature))), 500)),
      close: async () => {},
    };
    const founder = await h.add(0, { founder: true, verifier });
    await h.run(100);
    return { h, founder };
  }

  it('presents a chain adopted while the old one is being presented, once that one is answered', async () => {
    const { h, founder } = await slowFounder();
    const now = h.clock.now();
    const old = [issueCredential(id(0), { fleetId: FLEET, peerId: id(1).peerId, issuedAt: now, expiresAt: now + 20_000 })];
    const member = await h.add(1, { chain: old });
    const renewed = founder.issueFor(id(1).peerId);
    await h.network.lookup(id(1).peerId as PeerId)!.dial(id(0).peerId as PeerId, []);
    await member.adopt(renewed);
    await h.run(2_000);
    expect(founder.isAdmitted(id(1).peerId as PeerId)).toBe(true);
    expect(founder.admittedPeers()[0]!.expiresAt).toBeGreaterThan(old[0]!.expiresAt);
    await h.run(20_000);
    expect(h.network.lookup(id(0).peerId as PeerId)!.connectedPeers()).toEqual([id(1).peerId]);
    expect(h.penalties.get(0)!.snapshot().byPeer[id(1).peerId]).toBeUndefined();
  });

  it('does not dial back, to present again, a peer whose connection closed meanwhile', async () => {
    const { h, founder } = await slowFounder();
    await h.add(1, { chain: founder.issueFor(id(1).peerId) });
    const member = h.network.lookup(id(1).peerId as PeerId)!;
    await member.dial(id(0).peerId as PeerId, []);
    // The member admitted the founder; its own presentation is still being checked.
    await h.run(200);
    await member.hangUp(id(0).peerId as PeerId);
    await h.run(100);
    expect(member.connectedPeers()).toEqual([]);
  });
});

