import { chmod, stat, writeFile } from 'node:fs/promises';

// Secret files (key files) without the node's identity code: the CLI's client commands read key
// files and must not load libp2p to do so.

/** Thrown when a key file is readable by other users or otherwise unusable. */
export class KeyFileError extends Error {
  override name = 'KeyFileError';
}

/** Writes a secret file readable by its owner only. */
export async function writeSecretFile(path: string, contents: string | Uint8Array): Promise<void> {
  await writeFile(path, contents, { mode: 0o600, flag: 'wx' });
  await chmod(path, 0o600);
}

/** Refuses key files that group or others can read or write. */
export async function assertPrivate(path: string): Promise<void> {
  const info = await stat(path);
  if ((info.mode & 0o077) !== 0) {
    throw new KeyFileError(`${path} is accessible by other users (mode ${(info.mode & 0o777).toString(8)}): run "chmod 600 ${path}"`);
  }
}
