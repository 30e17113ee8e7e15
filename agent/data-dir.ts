import { generateKeyPair as generateLibp2pKey, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys';
import type { PrivateKey } from '@libp2p/interface';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { chmod, mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { KeyFileError, assertPrivate, writeSecretFile } from './secret-files.ts';
import { join } from 'node:path';
import { type PeerId } from '../mesh/index.ts';

/** Where a node keeps its files. */
export interface DataDir {
  readonly root: string;
  readonly identityFile: string;
  readonly stateDir: string;
  readonly rootKeyFile: string;
  readonly operatorKeyFile: string;
  readonly pidFile: string;
  /** What module artifacts this machine runs (docs/CATALOG.md §Promotion evidence). */
  readonly modulesFile: string;
}

export function dataDir(root: string): DataDir {
  return {
    root,
    identityFile: join(root, 'identity.key'),
    stateDir: join(root, 'state'),
    rootKeyFile: join(root, 'root.key'),
    operatorKeyFile: join(root, 'operator.key'),
    pidFile: join(root, 'node.pid'),
    modulesFile: join(root, 'modules.json'),
  };
}

export { KeyFileError, assertPrivate, writeSecretFile } from './secret-files.ts';

/** Checks every key file in the data directory before the node starts. */
export async function assertKeyFilesPrivate(dir: DataDir): Promise<void> {
  let names: string[] = [];
  try {
    names = await readdir(dir.root);
  } catch {
    return;
  }
  for (const name of names.filter((n) => n.endsWith('.key')).sort()) await assertPrivate(join(dir.root, name));
}

/** Loads the node's libp2p identity, creating it on first use; the peer id never changes after. */
export async function loadOrCreateIdentity(dir: DataDir): Promise<{ privateKey: PrivateKey; peerId: PeerId }> {
  await mkdir(dir.root, { recursive: true, mode: 0o700 });
  let privateKey: PrivateKey;
  try {
    const bytes = await readFile(dir.identityFile);
    await assertPrivate(dir.identityFile);
    try {
      privateKey = privateKeyFromProtobuf(bytes);
    } catch (error) {
      throw new KeyFileError(`${dir.identityFile} is damaged (${(error as Error).message}); the node's identity cannot be recovered from it`);
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    privateKey = await generateLibp2pKey('Ed25519');
    await writeSecretFile(dir.identityFile, privateKeyToProtobuf(privateKey));
  }
  return { privateKey, peerId: peerIdFromPrivateKey(privateKey).toString() as PeerId };
}
