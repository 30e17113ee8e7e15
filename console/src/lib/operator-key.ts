import { fromBase64Url, utf8 } from './encoding.ts';
import type { OperatorSigner } from './signing.ts';

/** Thrown when a file is not a usable operator key; the message says what to do. */
export class KeyImportError extends Error {
  override name = 'KeyImportError';
}

/** The fields of an operator key file (agent/key-files.ts) the console needs. */
export interface OperatorKeyFile {
  readonly fleetId: string;
  readonly name: string;
  readonly publicKey: string;
  readonly privateKey: string;
}

const MAX_KEY_FILE_CHARS = 16 * 1024;
const B64 = /^[A-Za-z0-9_-]{1,200}$/;
// PKCS#8 wrapping of a raw Ed25519 seed, as mesh/trust/keys.ts uses it.
const PKCS8_PREFIX = [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];

/** Parses the text of an operator key file; throws {@link KeyImportError} saying what is wrong. */
export function parseOperatorKeyFile(text: string): OperatorKeyFile {
  if (text.length > MAX_KEY_FILE_CHARS) throw new KeyImportError('that file is far too large to be an operator key: choose operator.key');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new KeyImportError('that file is not an operator key (it is not JSON): choose the operator.key file that "powernode fleet init" or "powernode operator add" wrote');
  }
  const file = value as Record<string, unknown>;
  if (typeof file !== 'object' || file === null) throw new KeyImportError('that file is not an operator key');
  if (file['kind'] === 'powernode-root-key') {
    throw new KeyImportError('that is the fleet root key, not an operator key: keep it offline and import operator.key instead');
  }
  if (file['kind'] !== 'powernode-operator-key') throw new KeyImportError('that file is not a powernode operator key: choose operator.key');
  if (file['version'] !== 1) throw new KeyImportError('that operator key was written by a newer powernode: upgrade the node serving this console');
  const fleetId = file['fleetId'];
  const name = file['name'];
  const publicKey = file['publicKey'];
  const privateKey = file['privateKey'];
  if (typeof fleetId !== 'string' || fleetId.length !== 32 || typeof name !== 'string' || typeof publicKey !== 'string' || !B64.test(publicKey) || typeof privateKey !== 'string' || !B64.test(privateKey)) {
    throw new KeyImportError('that operator key file is damaged (a field is missing or malformed)');
  }
  return { fleetId, name, publicKey, privateKey };
}

/**
 * Turns a key file into a non-extractable WebCrypto key, and checks that its private and public
 * halves belong together by signing and verifying a probe.
 */
export async function importOperatorKey(file: OperatorKeyFile): Promise<OperatorSigner> {
  const seed = fromBase64Url(file.privateKey);
  const publicBytes = fromBase64Url(file.publicKey);
  if (seed.length !== 32 || publicBytes.length !== 32) throw new KeyImportError('that operator key file is damaged (a key has the wrong length)');
  const pkcs8 = new Uint8Array(PKCS8_PREFIX.length + 32);
  pkcs8.set(PKCS8_PREFIX);
  pkcs8.set(seed, PKCS8_PREFIX.length);
  let privateKey: CryptoKey;
  let verifyKey: CryptoKey;
  try {
    privateKey = await crypto.subtle.importKey('pkcs8', pkcs8, { name: 'Ed25519' }, false, ['sign']);
    verifyKey = await crypto.subtle.importKey('raw', publicBytes, { name: 'Ed25519' }, false, ['verify']);
  } catch (error) {
    if ((error as Error).name === 'NotSupportedError') throw new KeyImportError('this browser cannot sign with Ed25519 keys: use a current Chromium, Firefox or Safari');
    throw new KeyImportError(`the browser could not read that key (${(error as Error).message})`);
  } finally {
    pkcs8.fill(0);
    seed.fill(0);
  }
  const probe = utf8(`powernode-console-key-check\n${file.publicKey}`);
  const signature = await crypto.subtle.sign('Ed25519', privateKey, probe);
  if (!(await crypto.subtle.verify('Ed25519', verifyKey, signature, probe))) {
    throw new KeyImportError('that operator key file is damaged: its private and public keys do not match');
  }
  return { privateKey, publicKey: file.publicKey, fleetId: file.fleetId, name: file.name };
}
