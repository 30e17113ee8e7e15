import { describe, expect, it } from 'vitest';
import { explain, normaliseApiUrl } from '../src/lib/api.ts';

describe('what the console tells an operator about a node\'s answer', () => {
  const base = 'http://127.0.0.1:7420';

  it('words refusals of the key by their cause', () => {
    expect(explain(401, 'that operator key was revoked by the fleet root key', base)).toMatch(/revoked by the fleet root key: ask the fleet owner/);
    expect(explain(401, 'that key is not a certified operator of this fleet', base)).toMatch(/does not know this key: it belongs to another fleet/);
    expect(explain(401, 'the request time is more than 60 s away from this node’s clock: check both clocks', base)).toMatch(/clock/);
    expect(explain(0, '', base)).toBe('Cannot reach the node at http://127.0.0.1:7420. Is it running, and is the address right?');
    expect(explain(400, 'label key "Role" must be 1-63 lowercase letters', base)).toBe('The node refused it: label key "Role" must be 1-63 lowercase letters.');
    expect(explain(404, 'no such endpoint: GET /api/v1/events', base)).toMatch(/does not offer this yet/);
    expect(explain(404, 'unknown member 12D3KooW…', base)).toBe('Unknown member 12D3KooW….');
  });

  it('takes a node address with or without the scheme, and nothing with a path', () => {
    expect(normaliseApiUrl(' 127.0.0.1:7421/ ')).toBe('http://127.0.0.1:7421');
    expect(normaliseApiUrl('https://node.example:7420')).toBe('https://node.example:7420');
    expect(() => normaliseApiUrl('http://127.0.0.1:7421/api/v1')).toThrow(/has no path/);
    expect(() => normaliseApiUrl('not an address')).toThrow(/not a node address/);
  });
});
