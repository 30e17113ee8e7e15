import { Encoder } from 'cbor-x';
import { describe, expect, it } from 'vitest';
import {
  ManualClock,
  type PeerId,
  PeerPenalties,
  ShapeError,
  WireError,
  decodeMessage,
  defineProtocol,
  encodeMessage,
  s,
} from '../../mesh/index.ts';

const testProtocol = defineProtocol({
  id: '/powernode/test/1',
  version: 2,
  maxFrameBytes: 256,
  messages: {
    hello: s.object({ fleetId: s.string({ max: 64, pattern: /^[a-z0-9-]+$/ }), note: s.optional(s.string({ max: 8 })) }),
    data: s.object({ items: s.array(s.uint(1000), { max: 4 }), blob: s.bytes({ max: 16 }) }),
  },
});

const rawEncoder = new Encoder({ useRecords: false, tagUint8Array: false });
const raw = (value: unknown): Uint8Array => rawEncoder.encode(value);

function codeOf(frame: Uint8Array): string {
  try {
    decodeMessage(testProtocol, frame);
    return 'accepted';
  } catch (error) {
    expect(error).toBeInstanceOf(WireError);
    return (error as WireError).code;
  }
}

describe('wire envelopes', () => {
  it('round-trips every message type', () => {
    const hello = { type: 'hello', body: { fleetId: 'fleet-1' } } as const;
    const data = { type: 'data', body: { items: [1, 2, 3], blob: new Uint8Array([9, 8]) } } as const;
    expect(decodeMessage(testProtocol, encodeMessage(testProtocol, hello))).toEqual(hello);
    const decoded = decodeMessage(testProtocol, encodeMessage(testProtocol, data));
    expect(decoded.type).toBe('data');
    expect(decoded.body).toMatchObject({ items: [1, 2, 3] });
  });

  it('refuses to encode a message that does not fit its own shape', () => {
    expect(() => encodeMessage(testProtocol, { type: 'hello', body: { fleetId: 'UPPER' } })).toThrow(/does not match/);
  });

  it('gives each kind of bad frame its own code', () => {
    expect(codeOf(new Uint8Array([0xff, 0xff, 0x00]))).toBe('malformed');
    expect(codeOf(new TextEncoder().encode('GET / HTTP/1.1\r\n'))).toBe('malformed');
    expect(codeOf(raw({ not: 'an envelope' }))).toBe('malformed');
    expect(codeOf(raw([3, 'hello', { fleetId: 'f' }]))).toBe('unsupported-version');
    expect(codeOf(raw([1, 'hello', { fleetId: 'f' }]))).toBe('unsupported-version');
    expect(codeOf(raw([2, 'goodbye', {}]))).toBe('unknown-type');
    expect(codeOf(raw([2, '__proto__', {}]))).toBe('unknown-type');
    expect(codeOf(raw([2, 'hello', { fleetId: 7 }]))).toBe('bad-shape');
    expect(codeOf(raw([2, 'hello', { fleetId: 'f', extra: true }]))).toBe('bad-shape');
    expect(codeOf(raw([2, 'data', { items: [1, 2, 3, 4, 5], blob: new Uint8Array(1) }]))).toBe('bad-shape');
    expect(codeOf(raw([2, 'data', { items: [1], blob: new Uint8Array(17) }]))).toBe('bad-shape');
    expect(codeOf(raw([2, 'data', { items: [-1], blob: new Uint8Array(1) }]))).toBe('bad-shape');
    expect(codeOf(new Uint8Array(257))).toBe('oversized');
  });

  it('refuses objects that CBOR tags construct, such as dates and regexps', () => {
    const withDate = raw([2, 'hello', { fleetId: new Date(0) }]);
    expect(codeOf(withDate)).toBe('bad-shape');
    // [2, "hello", tag27(["RegExp", "a*"])]: cbor-x builds a RegExp from tag 27.
    const ascii = (text: string): number[] => [...new TextEncoder().encode(text)];
    const envelope = [0x83, 0x02, 0x65, ...ascii('hello'), 0xd8, 0x1b, 0x82, 0x66, ...ascii('RegExp'), 0x62, ...ascii('a*')];
    expect(codeOf(new Uint8Array(envelope))).toBe('bad-shape');
  });

  it('names the path of the first bad field', () => {
    try {
      decodeMessage(testProtocol, raw([2, 'data', { items: [1, 'x'], blob: new Uint8Array(1) }]));
      expect.unreachable();
    } catch (error) {
      expect((error as Error).message).toContain('data.items[1]');
    }
  });

  it('names the whole path of a bad field nested in arrays, tuples, records and objects', () => {
    // Parts are checked without their paths first; a failing one must still be named exactly.
    const shape = s.object({
      list: s.array(s.object({ pair: s.tuple([s.string({ max: 4 }), s.record(s.string({ max: 3 }), s.array(s.uint(9), { max: 2 }), { maxKeys: 2 })]) }), { max: 3 }),
      note: s.optional(s.object({ text: s.string({ max: 2 }) })),
    });
    const messageOf = (value: unknown, path?: string): string => {
      try {
        shape.check(value, path);
        return 'accepted';
      } catch (error) {
        expect(error).toBeInstanceOf(ShapeError);
        return (error as Error).message;
      }
    };
    const good = { pair: ['a', { k: [1] }] };
    expect(messageOf({ list: [good, good] })).toBe('accepted');
    expect(messageOf({ list: [good, { pair: ['a', { k: [1, 10] }] }] })).toBe('list[1].pair[1].k[1]: integer above 9');
    expect(messageOf({ list: [good, { pair: ['a', { long: [1] }] }] }, 'msg')).toBe('msg.list[1].pair[1].long: string longer than 3');
    expect(messageOf({ list: [{ pair: ['a', { k: [1] }], extra: 1 }] }, 'msg')).toBe('msg.list[0].extra: unexpected field');
    expect(messageOf({ list: [{ pair: ['toolong', {}] }] })).toBe('list[0].pair[0]: string longer than 4');
    expect(messageOf({ list: [], note: { text: 'abc' } }, 'm')).toBe('m.note.text: string longer than 2');
    expect(messageOf({ list: [7] })).toBe('list[0]: expected an object, got number');
    expect(messageOf([])).toBe('value: expected an object, got an array');
  });
});

describe('PeerPenalties', () => {
  it('counts refusals per peer and reason and disconnects a peer at the threshold within the window', () => {
    const clock = new ManualClock();
    const disconnected: PeerId[] = [];
    const penalties = new PeerPenalties({ clock, threshold: 3, windowMs: 1000, onExceeded: (p) => disconnected.push(p) });
    const bad = 'peer-bad' as PeerId;
    const slow = 'peer-slow' as PeerId;
    penalties.record(bad, 'malformed');
    penalties.record(slow, 'bad-shape');
    clock.advance(2000);
    penalties.record(slow, 'bad-shape');
    clock.advance(2000);
    penalties.record(slow, 'bad-shape');
    penalties.record(bad, 'oversized');
    penalties.record(bad, 'malformed');
    expect(disconnected).toEqual([]);
    penalties.record(bad, 'malformed');
    expect(disconnected).toEqual([bad]);
    expect(penalties.snapshot()).toEqual({
      total: 7,
      disconnects: 1,
      byPeer: { [bad]: { malformed: 3, oversized: 1 }, [slow]: { 'bad-shape': 3 } },
    });
  });
});
