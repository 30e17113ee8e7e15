import { readFile } from 'node:fs/promises';
import type { OperatorView } from '../crdt-schema/index.ts';
import { type Ed25519KeyPair, InvalidKeyError, fromBase64Url, keyPairFromSeed, s, toBase64Url } from '../mesh/index.ts';
import { KeyFileError, assertPrivate, writeSecretFile } from './secret-files.ts';

/** An operator key file: the operator's private key and its certificate from the fleet root. */
export interface OperatorKeyFile {
  readonly kind: 'powernode-operator-key';
  readonly version: 1;
  readonly fleetId: string;
  readonly name: string;
  readonly publicKey: string;
  readonly privateKey: string;
  readonly addedAt: number;
  readonly certificate: string;
}

/** The fleet root key file. Only needed to certify operators; can live offline. */
export interface RootKeyFile {
  readonly kind: 'powernode-root-key';
  readonly version: 1;
  readonly fleetId: string;
  readonly publicKey: string;
  readonly privateKey: string;
}

const b64 = s.string({ min: 1, max: 200, pattern: /^[A-Za-z0-9_-]+$/ });
const operatorShape = s.object({
  kind: s.literal('powernode-operator-key'),
  version: s.literal(1),
  fleetId: s.string({ min: 32, max: 32 }),
  name: s.string({ min: 1, max: 200 }),
  publicKey: b64,
  privateKey: b64,
  addedAt: s.uint(),
  certificate: b64,
});

export async function writeOperatorKeyFile(path: string, fleetId: string, keys: Ed25519KeyPair, operator: OperatorView): Promise<void> {
  const file: OperatorKeyFile = {
    kind: 'powernode-operator-key',
    version: 1,
    fleetId,
    name: operator.name,
    publicKey: operator.publicKey,
    privateKey: toBase64Url(keys.seed),
    addedAt: operator.addedAt,
    certificate: operator.certificate,
  };
  await writeSecretFile(path, `${JSON.stringify(file, null, 2)}\n`);
}

export async function writeRootKeyFile(path: string, fleetId: string, keys: Ed25519KeyPair): Promise<void> {
  const file: RootKeyFile = { kind: 'powernode-root-key', version: 1, fleetId, publicKey: toBase64Url(keys.publicKey), privateKey: toBase64Url(keys.seed) };
  await writeSecretFile(path, `${JSON.stringify(file, null, 2)}\n`);
}

/**
 * A module publisher's signing key (Ed25519): signs module versions (their module, number and
 * artifact digests) where the build happens. Not tied to a fleet: trust policies name its public key.
 */
export interface PublisherKeyFile {
  readonly kind: 'powernode-publisher-key';
  readonly version: 1;
  readonly name: string;
  readonly publicKey: string;
  readonly privateKey: string;
}

export async function writePublisherKeyFile(path: string, name: string, keys: Ed25519KeyPair): Promise<void> {
  const file: PublisherKeyFile = { kind: 'powernode-publisher-key', version: 1, name, publicKey: toBase64Url(keys.publicKey), privateKey: toBase64Url(keys.seed) };
  await writeSecretFile(path, `${JSON.stringify(file, null, 2)}\n`);
}

const rootShape = s.object({
  kind: s.literal('powernode-root-key'),
  version: s.literal(1),
  fleetId: s.string({ min: 32, max: 32 }),
  publicKey: b64,
  privateKey: b64,
});

/** Reads and checks the fleet root key file: private mode, right shape, key pair consistent. */
export async function readRootKeyFile(path: string): Promise<RootKeyFile & { readonly seed: Uint8Array }> {
  const file = await readKeyFile(path, 'root', (value) => rootShape.check(value) as RootKeyFile);
  return { ...file, seed: checkedSeed(path, file.privateKey, file.publicKey) };
}

const publisherShape = s.object({
  kind: s.literal('powernode-publisher-key'),
  version: s.literal(1),
  name: s.string({ min: 1, max: 200 }),
  publicKey: s.string({ min: 43, max: 43 }),
  privateKey: s.string({ min: 43, max: 43 }),
});

/** Reads and checks a publisher key file: private mode, right shape, key pair consistent. */
export async function readPublisherKeyFile(path: string): Promise<PublisherKeyFile & { readonly seed: Uint8Array }> {
  const file = await readKeyFile(path, 'publisher', (value) => publisherShape.check(value) as PublisherKeyFile);
  return { ...file, seed: checkedSeed(path, file.privateKey, file.publicKey) };
}

/** Reads and checks an operator key file: private mode, right shape, key pair consistent. */
export async function readOperatorKeyFile(path: string): Promise<OperatorKeyFile & { readonly seed: Uint8Array }> {
  const file = await readKeyFile(path, 'operator', (value) => operatorShape.check(value) as OperatorKeyFile);
  return { ...file, seed: checkedSeed(path, file.privateKey, file.publicKey) };
}

async function readKeyFile<T>(path: string, what: string, check: (value: unknown) => T): Promise<T> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new KeyFileError(`cannot read the ${what} key ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  await assertPrivate(path);
  try {
    return check(JSON.parse(text));
  } catch (error) {
    throw new KeyFileError(`${path} is not a powernode ${what} key (${(error as Error).message})`);
  }
}

function checkedSeed(path: string, privateKey: string, publicKey: string): Uint8Array {
  try {
    const seed = fromBase64Url(privateKey);
    if (toBase64Url(keyPairFromSeed(seed).publicKey) !== publicKey) throw new InvalidKeyError('public and private key do not match');
    return seed;
  } catch (error) {
    throw new KeyFileError(`${path} is damaged: ${(error as Error).message}`);
  }
}
