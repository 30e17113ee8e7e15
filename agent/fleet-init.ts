import { hostname } from 'node:os';
import { type FleetId, toHex } from '../crdt-schema/index.ts';
import { type Logger, certifyOperator, foundFleetInStorage, generateKeyPair, toBase64Url } from '../mesh/index.ts';
import { CryptoRandom } from './adapters/crypto-random.ts';
import { LevelStorage } from './adapters/level-storage.ts';
import { SystemClock } from './adapters/system-clock.ts';
import { type DataDir, loadOrCreateIdentity } from './data-dir.ts';
import { writeOperatorKeyFile, writeRootKeyFile } from './key-files.ts';

export interface FleetInitResult {
  readonly fleetId: string;
  readonly peerId: string;
  readonly operatorKey: string;
  readonly rootKey: string;
}

/**
 * Creates a new fleet in `dir`: the node identity, the fleet root key, a first operator key
 * certified by it (separate files, 0600), and the fleet document with this node as founder.
 */
export async function initFleet(dir: DataDir, options: { name: string; operatorName?: string; log: Logger }): Promise<FleetInitResult> {
  const random = new CryptoRandom();
  const clock = new SystemClock();
  const { peerId } = await loadOrCreateIdentity(dir);
  const storage = await LevelStorage.open(dir.stateDir);
  try {
    const fleetId = toHex(random.bytes(16)) as FleetId;
    const root = generateKeyPair(random);
    const operatorKeys = generateKeyPair(random);
    const now = clock.now();
    const operator = certifyOperator(root.seed, fleetId, {
      publicKey: toBase64Url(operatorKeys.publicKey),
      name: options.operatorName ?? `operator@${hostname()}`,
      addedAt: now,
    });
    await writeRootKeyFile(dir.rootKeyFile, fleetId, root);
    await writeOperatorKeyFile(dir.operatorKeyFile, fleetId, operatorKeys, operator);
    await foundFleetInStorage({ storage, clock, random, log: options.log }, peerId, {
      fleetId,
      name: options.name,
      createdAt: now,
      rootKey: toBase64Url(root.publicKey),
      operator,
      founder: { peerId, name: hostname() },
    });
    return { fleetId, peerId, operatorKey: dir.operatorKeyFile, rootKey: dir.rootKeyFile };
  } finally {
    await storage.close();
  }
}
