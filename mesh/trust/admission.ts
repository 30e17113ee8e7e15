import type { Logger } from '../logger.ts';
import type { Clock, TimerId } from '../ports/clock.ts';
import type { SignatureVerifier } from '../ports/signature-verifier.ts';
import type { Storage } from '../ports/storage.ts';
import type { PeerId, RequestAnswer, Transport } from '../ports/transport.ts';
import { ExchangeAbortedError, type MessageOf, type PeerPenalties, WireError, decodeCbor, decodeMessage, defineProtocol, encodeCbor, encodeMessage, exchange, s, serveRequests } from '../wire/index.ts';
import {
  CREDENTIAL_LIFE_MS,
  CREDENTIAL_RENEW_AT,
  type Credential,
  type CredentialContext,
  MAX_CREDENTIAL_CHAIN,
  type ChainProblem,
  chainProblem,
  credentialChainShape,
  credentialSignatureCheck,
  issueCredential,
} from './credentials.ts';
import { verifyBytes } from './keys.ts';
import type { Ed25519KeyPair } from './keys.ts';
import { setBounded } from '../bounded-map.ts';

const chainShape = credentialChainShape;

/** Presenting membership credentials on a connection (docs/SECURITY.md §Admission). */
export const admitProtocol = defineProtocol({
  id: '/powernode/admit/1',
  version: 1,
  maxFrameBytes: 16 * 1024,
  messages: {
    present: s.object({ chain: chainShape }),
    admitted: s.object({ expiresAt: s.uint() }),
    /** The chain cannot be checked yet (this node lacks the records of its issuers); kept and checked again. */
    pending: s.object({ reason: s.string({ max: 1000 }) }),
    renew: s.object({}),
    credential: s.object({ chain: chainShape }),
    refused: s.object({ reason: s.string({ max: 1000 }) }),
  },
});
export type AdmitMessage = MessageOf<typeof admitProtocol>;

const CREDENTIAL_KEY = ['node', 'credential'];
/** A connected peer that has not presented a valid credential by then is disconnected. */
export const ADMISSION_TIMEOUT_MS = 5_000;
/** How often a node checks whether its credential is due for renewal. */
const RENEW_CHECK_MS = 3_600_000;
const ANSWER_TIMEOUT_MS = 5_000;
const MAX_SIGNATURE_VERDICTS = 10_000;

/** What admission asks of the node: its membership view, and what to do as peers come and go. */
export interface AdmissionPolicy {
  isMember(peer: string): boolean;
  /** The fleet's founder vouches for itself (the fleet document names it). */
  isFounder(peer: string): boolean;
  barredReason(peer: string): string | undefined;
  /**
   * A peer admitted without checking: the member this node joined through, while this node does
   * not hold the fleet's records yet (it chose that peer from the join string it was given).
   */
  trustedUntilRecords(peer: string): boolean;
  /** A peer was admitted (or re-presented): fleet protocols may now be served to it. */
  onAdmitted(peer: PeerId): void;
  /** This node holds the records that make it a member (so it can judge others' chains). */
  hasRecords(): boolean;
}

export interface AdmissionInit {
  readonly transport: Transport;
  readonly clock: Clock;
  readonly log: Logger;
  readonly storage: Storage;
  readonly penalties: PeerPenalties;
  readonly identity: Ed25519KeyPair;
  readonly fleetId: string;
  readonly policy: AdmissionPolicy;
  /** Life of the credentials this node issues; 90 days unless a test says otherwise. */
  readonly credentialLifeMs?: number;
  /**
   * Checks credential signatures (in batches, off the event loop where the host can; the
   * simulator shares verdicts between nodes). Without one, they are checked in-process.
   */
  readonly verifier?: SignatureVerifier;
}

interface Admitted {
  readonly chain: readonly Credential[];
  readonly expiresAt: number;
}

/**
 * Admission of peers to the fleet's protocols. On every connection both sides present their
 * credential chain on `/powernode/admit/1`; a peer is admitted once its chain proves membership
 * ({@link chainProblem}). A peer not admitted within {@link ADMISSION_TIMEOUT_MS} is hung up on.
 * Admitted peers are re-checked whenever membership or revocations change ({@link recheck}).
 * This node's own credential is kept in storage and renewed by any member at 75 % of its life.
 */
export class Admission {
  readonly #init: AdmissionInit;
  readonly #localPeer: PeerId;
  readonly #admitted = new Map<PeerId, Admitted>();
  /** Chains that could not be checked yet (no known member vouches for them), by peer. */
  readonly #pending = new Map<PeerId, readonly Credential[]>();
  readonly #deadlines = new Map<PeerId, TimerId>();
  /**
   * The one timer that ends lapsed admissions, due at the earliest expiry it was armed for (a
   * timer per admitted peer, due in 90 days, was most of a simulated fleet's pending timers).
   */
  #expiry: { readonly timer: TimerId; readonly dueMs: number } | undefined;
  readonly #waiters = new Map<PeerId, Array<(admitted: boolean) => void>>();
  readonly #signatures = new Map<string, boolean>();
  /** Peers this node is presenting its chain to now; true: asked to again meanwhile. */
  readonly #presenting = new Map<PeerId, boolean>();
  /** Peers that accepted this node's chain on their current connection. */
  readonly #acceptedBy = new Set<PeerId>();
  /** The last reason each peer gave for refusing this node's chain. */
  readonly #refusals = new Map<PeerId, string>();
  #chain: readonly Credential[] = [];
  #renewTimer: TimerId | undefined;
  #renewing = false;
  #unsubscribe: Array<() => void> = [];
  #stopped = false;

  constructor(init: AdmissionInit) {
    this.#init = init;
    this.#localPeer = init.transport.localPeer;
  }

  /** Loads the stored credential; call before {@link start}. */
  async load(): Promise<void> {
    const bytes = await this.#init.storage.get(CREDENTIAL_KEY);
    if (bytes === undefined) return;
    try {
      this.#chain = chainShape.check(decodeCbor(bytes));
    } catch (error) {
      this.#init.log.warn('the stored membership credential is damaged; asking a member for a new one', { error: String(error) });
    }
  }

  start(): void {
    const { transport } = this.#init;
    serveRequests(transport, admitProtocol.id, (peer, frame) => this.#serve(peer, frame), { maxFrameBytes: admitProtocol.maxFrameBytes, onError: (peer, error) => this.#serveFailed(peer, error) });
    this.#unsubscribe.push(
      transport.on('peer:connect', (peer) => this.#onConnect(peer)),
      transport.on('peer:disconnect', (peer) => this.#forget(peer)),
    );
    for (const peer of transport.connectedPeers()) this.#onConnect(peer);
    this.#scheduleRenewal(0);
  }

  stop(): void {
    this.#stopped = true;
    for (const off of this.#unsubscribe) off();
    this.#unsubscribe = [];
    for (const timer of this.#deadlines.values()) this.#init.clock.clearTimeout(timer);
    this.#deadlines.clear();
    if (this.#expiry !== undefined) this.#init.clock.clearTimeout(this.#expiry.timer);
    this.#expiry = undefined;
    if (this.#renewTimer !== undefined) this.#init.clock.clearTimeout(this.#renewTimer);
    for (const peer of [...this.#waiters.keys()]) this.#settle(peer, false);
  }

  isAdmitted(peer: PeerId): boolean {
    const admitted = this.#admitted.get(peer);
    return admitted !== undefined && admitted.expiresAt > this.#init.clock.now();
  }

  /** Resolves true once `peer` is admitted, false if it is not within `timeoutMs` or disconnects. */
  whenAdmitted(peer: PeerId, timeoutMs = ADMISSION_TIMEOUT_MS): Promise<boolean> {
    if (this.isAdmitted(peer)) return Promise.resolve(true);
    if (this.#stopped) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      let done = false;
      const finish = (admitted: boolean): void => {
        if (done) return;
        done = true;
        this.#init.clock.clearTimeout(timer);
        resolve(admitted);
      };
      const timer = this.#init.clock.setTimeout(() => finish(false), timeoutMs);
      this.#waiters.set(peer, [...(this.#waiters.get(peer) ?? []), finish]);
    });
  }

  /** This node's credential chain (empty before it has one). */
  chain(): readonly Credential[] {
    return this.#chain;
  }

  /** When this node's credential expires, if it has one. */
  expiresAt(): number | undefined {
    return this.#chain[0]?.expiresAt;
  }

  /** Reasons peers gave for refusing this node's credential (e.g. it lost its token in a partition). */
  refusals(): Record<string, string> {
    return Object.fromEntries(this.#refusals);
  }

  /** Admitted peers with their credential's expiry, for status. */
  admittedPeers(): Array<{ peer: PeerId; expiresAt: number; issuer: string }> {
    return [...this.#admitted].map(([peer, a]) => ({ peer, expiresAt: a.expiresAt, issuer: a.chain[0]!.issuer })).sort((a, b) => (a.peer < b.peer ? -1 : 1));
  }

  /** A chain vouching for `peer`, issued by this node: its credential first, then this node's chain. */
  issueFor(peer: string): Credential[] {
    const now = this.#init.clock.now();
    const credential = issueCredential({ ...this.#init.identity, peerId: this.#localPeer }, { fleetId: this.#init.fleetId, peerId: peer, issuedAt: now, expiresAt: now + (this.#init.credentialLifeMs ?? CREDENTIAL_LIFE_MS) });
    // The founder vouches for itself; others append their own chain for nodes that do not know them yet.
    return peer === this.#localPeer ? [credential] : [credential, ...this.#chain].slice(0, MAX_CREDENTIAL_CHAIN);
  }

  /** Stores a new chain for this node and presents it to every connected peer. */
  async adopt(chain: readonly Credential[]): Promise<void> {
    const checked = chainShape.check(chain);
    if (checked[0]!.peerId !== this.#localPeer) throw new WireError('bad-shape', 'a credential for another peer');
    await storeCredentialChain(this.#init.storage, checked);
    this.#chain = checked;
    for (const peer of this.#init.transport.connectedPeers()) void this.#present(peer);
    this.#scheduleRenewal(this.#renewDelay());
  }

  /**
   * Checks every admitted peer again (membership or revocations changed). Returns the peers that
   * are no longer admitted; they are hung up on.
   */
  recheck(): PeerId[] {
    const dropped: PeerId[] = [];
    for (const [peer, admitted] of this.#admitted) {
      const problem = this.#problem(peer, admitted.chain);
      if (problem === undefined) continue;
      dropped.push(peer);
      this.#admitted.delete(peer);
      this.#init.penalties.record(peer, 'admission:withdrawn');
      this.#init.log.warn('a peer is no longer admitted; disconnecting it', { peer, reason: problem.reason });
      void this.#tellThenHangUp(peer, problem.reason);
    }
    for (const [peer, chain] of this.#pending) {
      const problem = this.#problem(peer, chain);
      if (problem?.kind === 'unknown') continue;
      this.#pending.delete(peer);
      if (problem === undefined) this.#admit(peer, chain);
      else this.#refuse(peer, problem.reason);
    }
    return dropped;
  }

  /** Tells a peer why it is being cut off (best effort, briefly), then hangs up. */
  async #tellThenHangUp(peer: PeerId, reason: string): Promise<void> {
    const { transport, clock } = this.#init;
    try {
      const stream = await transport.openStream(peer, admitProtocol.id, { maxFrameBytes: admitProtocol.maxFrameBytes });
      const told = (async () => {
        await stream.send(encodeMessage(admitProtocol, { type: 'refused', body: { reason: reason.slice(0, 1000) } }));
        await stream.close();
      })();
      await Promise.race([told, new Promise((resolve) => clock.setTimeout(() => resolve(undefined), 1_000))]);
    } catch {
      // It may already be gone; hanging up is what matters.
    }
    await transport.hangUp(peer);
  }

  #onConnect(peer: PeerId): void {
    if (this.#stopped) return;
    void this.#present(peer);
    this.#armDeadline(peer);
  }

  /** Gives `peer` more time (a join in progress: it has no credential until it is welcomed). */
  extendDeadline(peer: PeerId): void {
    if (this.#deadlines.has(peer)) this.#armDeadline(peer);
  }

  /** Replaces `peer`'s timer in `timers` with one that runs `fire` after `delayMs`. */
  #rearm(timers: Map<PeerId, TimerId>, peer: PeerId, delayMs: number, fire: () => void): void {
    const { clock } = this.#init;
    const previous = timers.get(peer);
    if (previous !== undefined) clock.clearTimeout(previous);
    timers.set(
      peer,
      clock.setTimeout(() => {
        timers.delete(peer);
        fire();
      }, delayMs),
    );
  }

  #armDeadline(peer: PeerId): void {
    this.#rearm(this.#deadlines, peer, ADMISSION_TIMEOUT_MS, () => {
      if (this.isAdmitted(peer) || this.#init.policy.trustedUntilRecords(peer)) return;
      // While this node is still taking in the fleet's records it cannot judge chains: wait.
      if (!this.#init.policy.hasRecords()) {
        this.#armDeadline(peer);
        return;
      }
      this.#init.penalties.record(peer, 'admission:timeout');
      this.#init.log.info('a peer presented no valid credential in time; disconnecting it', { peer });
      void this.#init.transport.hangUp(peer);
    });
  }

  #forget(peer: PeerId): void {
    this.#admitted.delete(peer);
    this.#pending.delete(peer);
    this.#acceptedBy.delete(peer);
    const timer = this.#deadlines.get(peer);
    if (timer !== undefined) this.#init.clock.clearTimeout(timer);
    this.#deadlines.delete(peer);
    this.#settle(peer, false);
  }

  #settle(peer: PeerId, admitted: boolean): void {
    const waiters = this.#waiters.get(peer) ?? [];
    this.#waiters.delete(peer);
    for (const finish of waiters) finish(admitted);
  }

  /**
   * Sends our chain to `peer` and reads its answer. One presentation at a time per peer: both
   * ends present when they connect, and each presents again once it admits the other unless that
   * one accepted it already — which, with both presentations in flight, it has not yet, so every
   * connection carried a third presentation (a quarter of a simulated fleet's admission frames at
   * its start). Asked again while one is in flight, it presents again once that one is over if it
   * got no answer (a refusal or "pending" is an answer: the peer keeps a pending chain and checks
   * it again) or showed a chain this node has replaced since, and the peer is still connected.
   */
  async #present(peer: PeerId): Promise<void> {
    if (this.#chain.length === 0 || this.#stopped) return;
    if (this.#presenting.has(peer)) {
      this.#presenting.set(peer, true);
      return;
    }
    this.#presenting.set(peer, false);
    const chain = this.#chain;
    let answer: AdmitMessage | undefined;
    try {
      answer = await this.#ask(peer, { type: 'present', body: { chain } });
    } finally {
      const again = this.#presenting.get(peer) === true;
      this.#presenting.delete(peer);
      // Again if that one got no answer or showed a chain since replaced (a renewal adopted
      // meanwhile); never to a peer no longer connected (the exchange would dial it back).
      if (again && (answer === undefined || chain !== this.#chain) && !this.#stopped && this.#init.transport.connectedPeers().includes(peer)) void this.#present(peer);
    }
    if (answer?.type === 'admitted') {
      this.#acceptedBy.add(peer);
      this.#refusals.delete(peer);
    } else if (answer?.type === 'pending') {
      this.#init.log.debug('a peer will check this node\'s credential once it has the records', { peer });
    } else if (answer?.type === 'refused') {
      this.#refusals.set(peer, answer.body.reason);
      this.#init.log.warn('a peer refused this node\'s credential', { peer, reason: answer.body.reason });
    }
  }

  /** One request, one answer (undefined if the peer does not answer or the exchange fails). */
  async #ask(peer: PeerId, message: AdmitMessage): Promise<AdmitMessage | undefined> {
    try {
      return await exchange(this.#init.transport, this.#init.clock, peer, admitProtocol, message, ANSWER_TIMEOUT_MS);
    } catch (error) {
      this.#init.log.debug('admission exchange failed', { peer, type: message.type, error: String(error) });
      return undefined;
    }
  }

  /** Answers one admission message from `peer` (undefined: nothing to answer). */
  async #serve(peer: PeerId, frame: Uint8Array): Promise<Uint8Array | RequestAnswer | undefined> {
    const request = decodeMessage(admitProtocol, frame);
    if (request.type === 'present') {
      const { chain } = request.body;
      await this.#verifySignatures(chain);
      // The connection may have closed while the signatures were checked: nothing to admit.
      if (this.#stopped || !this.#init.transport.connectedPeers().includes(peer)) throw new ExchangeAbortedError('the connection closed');
      const problem = this.#problem(peer, chain);
      if (problem === undefined) return encodeMessage(admitProtocol, { type: 'admitted', body: { expiresAt: this.#admit(peer, chain) } });
      if (problem.kind === 'unknown') {
        // Its issuers' records have not reached this node yet: checked again as they arrive.
        this.#pending.set(peer, chain);
        return encodeMessage(admitProtocol, { type: 'pending', body: { reason: problem.reason.slice(0, 1000) } });
      }
      return { frame: encodeMessage(admitProtocol, { type: 'refused', body: { reason: problem.reason.slice(0, 1000) } }), afterSent: () => this.#refuse(peer, problem.reason) };
    }
    if (request.type === 'refused') {
      // A member cutting this node off says why (revoked, token lost in a partition).
      this.#refusals.set(peer, request.body.reason);
      this.#acceptedBy.delete(peer);
      this.#init.log.error('a member cut this node off', { peer, reason: request.body.reason });
      return undefined;
    }
    if (request.type === 'renew') {
      // Renewed only for a node this one knows as a member by its own records (the connection
      // proves the peer id), so a node whose credential lapsed or was lost can get a new one.
      if (!this.#init.policy.isMember(peer) || this.#init.policy.barredReason(peer) !== undefined || this.#chain.length === 0) {
        return encodeMessage(admitProtocol, { type: 'refused', body: { reason: 'this node cannot renew your credential: it does not know you as a member' } });
      }
      return encodeMessage(admitProtocol, { type: 'credential', body: { chain: this.issueFor(peer) } });
    }
    throw new WireError('protocol', `unexpected ${request.type} on the admission protocol`);
  }

  /** Counts what was wrong with an admission message against the peer that sent it. */
  #serveFailed(peer: PeerId, error: Error): void {
    const code = error instanceof WireError ? error.code : error.name === 'FrameTooLargeError' ? 'oversized' : 'stream';
    this.#init.penalties.record(peer, `admission:${code}`);
  }

  /** Admits `peer` on `chain`; returns when the admission lapses (the chain's first expiry). */
  #admit(peer: PeerId, chain: readonly Credential[]): number {
    const expiresAt = Math.min(...chain.map((c) => c.expiresAt));
    this.#admitted.set(peer, { chain, expiresAt });
    this.#armExpiry(expiresAt);
    this.#pending.delete(peer);
    const timer = this.#deadlines.get(peer);
    if (timer !== undefined) this.#init.clock.clearTimeout(timer);
    this.#deadlines.delete(peer);
    this.#settle(peer, true);
    this.#init.policy.onAdmitted(peer);
    // A peer that connected before this node could answer (a joiner) has not seen our chain.
    if (!this.#acceptedBy.has(peer)) void this.#present(peer);
    return expiresAt;
  }

  /** Makes sure the expiry timer fires by `expiresAt`. */
  #armExpiry(expiresAt: number): void {
    const { clock } = this.#init;
    if (this.#stopped || (this.#expiry !== undefined && this.#expiry.dueMs <= expiresAt)) return;
    if (this.#expiry !== undefined) clock.clearTimeout(this.#expiry.timer);
    this.#expiry = { dueMs: expiresAt, timer: clock.setTimeout(() => this.#expire(), Math.max(0, expiresAt - clock.now())) };
  }

  /** Disconnects every peer whose admission lapsed (it presented no renewed chain), then arms the timer for the next expiry. */
  #expire(): void {
    this.#expiry = undefined;
    const now = this.#init.clock.now();
    let next = Number.POSITIVE_INFINITY;
    for (const [peer, admitted] of this.#admitted) {
      if (admitted.expiresAt > now) {
        next = Math.min(next, admitted.expiresAt);
        continue;
      }
      this.#admitted.delete(peer);
      this.#init.penalties.record(peer, 'admission:expired');
      this.#init.log.warn('a peer\'s credential expired without renewal; disconnecting it', { peer });
      void this.#init.transport.hangUp(peer);
    }
    if (next !== Number.POSITIVE_INFINITY) this.#armExpiry(next);
  }

  #refuse(peer: PeerId, reason: string): void {
    this.#init.penalties.record(peer, 'admission:refused');
    this.#init.log.warn('refused a peer\'s credential; disconnecting it', { peer, reason });
    void this.#init.transport.hangUp(peer);
  }

  #problem(peer: PeerId, chain: readonly Credential[]): ChainProblem | undefined {
    const { policy } = this.#init;
    if (policy.trustedUntilRecords(peer)) return undefined;
    const context: CredentialContext = {
      fleetId: this.#init.fleetId,
      now: this.#init.clock.now(),
      isMember: (p) => policy.isMember(p) || policy.trustedUntilRecords(p),
      barredReason: (p) => policy.barredReason(p),
      signatureValid: (credential) => this.#signatureValid(credential),
    };
    return chainProblem(peer, chain, context);
  }

  /**
   * Checks the signatures of `chain` not checked yet, as one batch through the verifier port, so
   * that {@link chainProblem} finds their verdicts here. Without a verifier, they are checked when
   * the chain is judged.
   */
  async #verifySignatures(chain: readonly Credential[]): Promise<void> {
    const { verifier } = this.#init;
    if (verifier === undefined) return;
    const unchecked = chain.filter((credential) => !this.#signatures.has(credential.signature)).slice(0, MAX_CREDENTIAL_CHAIN);
    if (unchecked.length === 0) return;
    const checks = unchecked.map((credential) => credentialSignatureCheck(credential));
    const wellFormed = unchecked.flatMap((credential, i) => (checks[i] === undefined ? [] : [{ credential, check: checks[i]! }]));
    for (let i = 0; i < unchecked.length; i++) if (checks[i] === undefined) this.#remember(unchecked[i]!.signature, false);
    const verdicts = await verifier.verifyBatch(wellFormed.map((w) => w.check));
    wellFormed.forEach((w, i) => this.#remember(w.credential.signature, verdicts[i] === true));
  }

  #signatureValid(credential: Credential): boolean {
    const cached = this.#signatures.get(credential.signature);
    if (cached !== undefined) return cached;
    const check = credentialSignatureCheck(credential);
    const valid = check !== undefined && verifyBytes(check.publicKey, check.message, check.signature);
    this.#remember(credential.signature, valid);
    return valid;
  }

  #remember(signature: string, valid: boolean): void {
    setBounded(this.#signatures, signature, valid, MAX_SIGNATURE_VERDICTS);
  }

  #renewDelay(): number {
    const first = this.#chain[0];
    if (first === undefined) return 0;
    const renewAt = first.issuedAt + (first.expiresAt - first.issuedAt) * CREDENTIAL_RENEW_AT;
    return Math.max(0, Math.min(renewAt - this.#init.clock.now(), RENEW_CHECK_MS));
  }

  #scheduleRenewal(delayMs: number): void {
    if (this.#stopped) return;
    if (this.#renewTimer !== undefined) this.#init.clock.clearTimeout(this.#renewTimer);
    this.#renewTimer = this.#init.clock.setTimeout(() => void this.#renewIfDue(), delayMs);
  }

  /** Past 75 % of its life (or without one), asks connected members in turn for a new credential. */
  async #renewIfDue(): Promise<void> {
    this.#renewTimer = undefined;
    if (this.#renewing || this.#stopped) return;
    if (this.#chain.length > 0 && this.#renewDelay() > 0) {
      this.#scheduleRenewal(this.#renewDelay());
      return;
    }
    this.#renewing = true;
    try {
      if (this.#init.policy.isFounder(this.#localPeer)) {
        await this.adopt(this.issueFor(this.#localPeer));
        return;
      }
      for (const peer of this.#init.transport.connectedPeers()) {
        const answer = await this.#ask(peer, { type: 'renew', body: {} });
        if (answer?.type !== 'credential' || answer.body.chain[0]?.peerId !== this.#localPeer) continue;
        await this.#verifySignatures(answer.body.chain);
        if (this.#problem(this.#localPeer, answer.body.chain) !== undefined) continue;
        await this.adopt(answer.body.chain);
        this.#init.log.info('renewed this node\'s membership credential', { issuer: answer.body.chain[0].issuer, expiresAt: new Date(answer.body.chain[0].expiresAt).toISOString() });
        return;
      }
    } catch (error) {
      this.#init.log.warn('renewing the membership credential failed; trying again later', { error: String(error) });
    } finally {
      this.#renewing = false;
    }
    // No member could renew it now: try again in a minute (a fresh node may not be connected yet).
    this.#scheduleRenewal(60_000);
  }
}

/** Stores a node's credential chain where {@link Admission.load} finds it (the joining node, before it opens). */
export async function storeCredentialChain(storage: Storage, chain: readonly Credential[]): Promise<void> {
  await storage.batch([{ type: 'put', key: CREDENTIAL_KEY, value: encodeCbor(chain) }], { sync: true });
}
