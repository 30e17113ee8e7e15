import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileModuleInventory, MODULE_INVENTORY_BYTES_MAX } from '../../agent/adapters/file-module-inventory.ts';
import { MemoryModuleInventory, ModuleInventoryError } from '../../mesh/index.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const digest = `sha256:${'a'.repeat(64)}`;

describe('the module inventory file', () => {
  let root: { path: string; remove: () => Promise<void> };
  const at = (name: string) => join(root.path, name);

  beforeAll(async () => {
    root = await tempDir('fc-inventory-');
  });
  afterAll(() => root.remove());

  it('reads modules.json, and no file as nothing run', async () => {
    await writeFile(at('good.json'), JSON.stringify({ modules: { web: digest } }));
    expect(await new FileModuleInventory(at('good.json')).read()).toEqual({ web: digest });
    expect(await new FileModuleInventory(at('missing.json')).read()).toEqual({});
  });

  it('refuses a broken file with a typed error naming the file and the problem', async () => {
    const cases: Array<[string, string | Buffer, RegExp]> = [
      ['not-json.json', '{"modules": {', /not-json\.json is not JSON/],
      ['bad-digest.json', JSON.stringify({ modules: { web: 'sha1:abc' } }), /bad-digest\.json: inventory\.modules\.web: must be "sha256:"/],
      ['bad-shape.json', JSON.stringify(['web']), /bad-shape\.json: inventory/],
      ['large.json', Buffer.alloc(MODULE_INVENTORY_BYTES_MAX + 10, 0x20), /larger than 65536 bytes/],
    ];
    for (const [name, content, message] of cases) {
      await writeFile(at(name), content);
      const reading = new FileModuleInventory(at(name)).read();
      await expect(reading).rejects.toBeInstanceOf(ModuleInventoryError);
      await expect(new FileModuleInventory(at(name)).read()).rejects.toThrow(message);
    }
    await expect(new FileModuleInventory(root.path).read()).rejects.toThrow(/cannot be read/);
  });

  it('holds an inventory in memory, checked as the file is', async () => {
    const inventory = new MemoryModuleInventory();
    expect(await inventory.read()).toEqual({});
    expect(() => inventory.set({ Web: digest })).toThrow(/must be a name/);
    inventory.set({ web: digest });
    inventory.fail('broken');
    await expect(inventory.read()).rejects.toThrow('broken');
    inventory.set({ web: digest });
    expect(await inventory.read()).toEqual({ web: digest });
  });
});
