import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FleetFileError, readFleetText } from '../../agent/fleet-command.ts';
import { FLEET_FILE_LIMITS } from '../../crdt-schema/index.ts';
import { tempDir } from '../helpers/temp-dir.ts';

/** How `fleet apply` reads its file, before anything is parsed. */
describe('reading a fleet.yaml for fleet apply', () => {
  let root: { path: string; remove: () => Promise<void> };
  beforeAll(async () => {
    root = await tempDir('fc-fleet-read-');
  });
  afterAll(async () => root?.remove());

  it('reads a file of exactly 1 MiB and refuses one byte more, naming its size', async () => {
    const fits = join(root.path, 'fits.yaml');
    await writeFile(fits, `#${'x'.repeat(FLEET_FILE_LIMITS.bytesMax - 2)}\n`);
    expect((await readFleetText(fits)).length).toBe(FLEET_FILE_LIMITS.bytesMax);
    const over = join(root.path, 'over.yaml');
    await writeFile(over, `#${'x'.repeat(FLEET_FILE_LIMITS.bytesMax - 1)}\n`);
    await expect(readFleetText(over)).rejects.toThrow(new FleetFileError(`${over} is ${FLEET_FILE_LIMITS.bytesMax + 1} bytes; at most ${FLEET_FILE_LIMITS.bytesMax} (1 MiB) are read: split the fleet over several files (one per section) or trim it`));
  });

  it('refuses a missing file, a directory and text that is not UTF-8, each by name', async () => {
    await expect(readFleetText(join(root.path, 'absent.yaml'))).rejects.toThrow(`${join(root.path, 'absent.yaml')}: no such file`);
    const dir = join(root.path, 'dir.yaml');
    await mkdir(dir);
    await expect(readFleetText(dir)).rejects.toThrow(`${dir} is not a file`);
    const latin1 = join(root.path, 'latin1.yaml');
    await writeFile(latin1, Buffer.from('modules: {caf\xe9: {}}\n', 'latin1'));
    await expect(readFleetText(latin1)).rejects.toThrow(FleetFileError);
    await expect(readFleetText(latin1)).rejects.toThrow(/is not UTF-8 text/);
  });
});
