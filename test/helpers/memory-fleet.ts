import { createHash } from 'node:crypto';
import { type FleetId, toHex } from '../../crdt-schema/index.ts';
import {
  FleetNode,
  type JoinInfo,
  ManualClock,
  MemoryLogger,
  MemoryModuleInventory,
  MemoryNetwork,
  MemoryStorage,
  SeededRandom,
  certifyOperator,
  foundFleetInStorage,
  generateKeyPair,
  sha256Hex,
  signGrant,
  toBase64Url,
} from '../../mesh/index.ts';
import { settle, testIdentity } from './mini-fleet.ts';

/** FleetNodes on one in-memory network and virtual clock, as the simulator will run them. */
export class Fleet {
  readonly clock = new ManualClock();
  readonly network = new MemoryNetwork();
  readonly random = new SeededRandom(99);
  readonly fleetId = toHex(new SeededRandom(1).bytes(16)) as FleetId;
  readonly root = generateKeyPair(this.random);
  readonly operatorKeys = generateKeyPair(this.random);
  readonly operator = certifyOperator(this.root.seed, this.fleetId, { publicKey: toBase64Url(this.operatorKeys.publicKey), name: 'ops', addedAt: 0 });
  readonly nodes = new Map<number, FleetNode>();
  /** Each node's module inventory (empty until a test sets it). */
  readonly inventories = new Map<number, MemoryModuleInventory>();

  ports(index: number) {
    const identity = testIdentity(index);
    return {
      identity,
      transport: this.network.createTransport(identity.peerId),
      storage: new MemoryStorage(),
      clock: this.clock,
      random: new SeededRandom(index),
      log: new MemoryLogger(),
      host: { hostname: `host-${index}`, arch: 'x64', platform: 'linux', versions: {} },
      modules: this.inventory(index),
    };
  }

  inventory(index: number): MemoryModuleInventory {
    const held = this.inventories.get(index);
    if (held !== undefined) return held;
    const made = new MemoryModuleInventory();
    this.inventories.set(index, made);
    return made;
  }

  async found(index: number): Promise<FleetNode> {
    const ports = this.ports(index);
    await foundFleetInStorage(ports, ports.identity.peerId, {
      fleetId: this.fleetId,
      name: 'test',
      createdAt: this.clock.now(),
      rootKey: toBase64Url(this.root.publicKey),
      operator: this.operator,
      founder: { peerId: ports.identity.peerId, name: `n${index}` },
    });
    return this.#start(index, FleetNode.open(ports));
  }

  /** A token and its operator grant, as `powernode token create` makes them. */
  token(seed: string): { token: Uint8Array; grant: JoinInfo['grant'] } {
    const token = new Uint8Array(createHash('sha256').update(seed).digest());
    const grant = signGrant(this.operatorKeys.seed, {
      fleetId: this.fleetId,
      tokenHash: sha256Hex(token),
      expiresAt: this.clock.now() + 3_600_000,
      operator: toBase64Url(this.operatorKeys.publicKey),
    });
    return { token, grant };
  }

  async join(index: number, via: number, tokenSeed: string): Promise<FleetNode> {
    const bootstrap = testIdentity(via).peerId;
    const join: JoinInfo = { fleetId: this.fleetId, addrs: [`/memory/${bootstrap}/p2p/${bootstrap}`], ...this.token(tokenSeed) };
    return this.#start(index, FleetNode.join(this.ports(index), join, `n${index}`));
  }

  async #start(index: number, opening: Promise<FleetNode>): Promise<FleetNode> {
    const node = await this.pumpUntil(opening);
    await node.start();
    await this.pumpUntil(node.waitForFleet());
    this.nodes.set(index, node);
    return node;
  }

  async pumpUntil<T>(promise: Promise<T>): Promise<T> {
    let done = false;
    let result: { value: T } | { error: unknown } | undefined;
    promise.then((value) => (result = { value }), (error: unknown) => (result = { error })).finally(() => (done = true));
    for (let i = 0; i < 5_000 && !done; i++) await this.clock.advanceAsync(10, settle);
    if (result === undefined) throw new Error('operation did not finish in 50 s of virtual time');
    if ('error' in result) throw result.error;
    return result.value;
  }

  async run(ms: number): Promise<void> {
    for (let t = 0; t < ms; t += 10) await this.clock.advanceAsync(10, settle);
  }

  partition(left: number[], right: number[]): void {
    for (const a of left) for (const b of right) this.network.block(testIdentity(a).peerId, testIdentity(b).peerId);
  }

  heal(left: number[], right: number[]): void {
    for (const a of left) for (const b of right) this.network.unblock(testIdentity(a).peerId, testIdentity(b).peerId);
  }
}

