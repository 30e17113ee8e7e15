import { describe, expect, it } from 'vitest';
import { ActorHost, AskTimeoutError, type Behavior, DeadLetterError } from '../../actors/host.ts';
import { AbortedError, ManualClock, MemoryLogger } from '../../mesh/index.ts';
import { settle } from '../helpers/mini-fleet.ts';

type CounterMessage = { kind: 'add'; n: number } | { kind: 'get' } | { kind: 'boom' } | { kind: 'silent' };

const counter: Behavior<number, CounterMessage> = {
  initial: () => 0,
  step: (state, message) => {
    switch (message.kind) {
      case 'add':
        return { state: state + message.n };
      case 'get':
        return { state, effects: [{ type: 'reply', value: state }] };
      case 'boom':
        throw new Error('boom');
      case 'silent':
        return { state };
    }
  },
};

function setup(onEscalate?: (name: string) => void) {
  const clock = new ManualClock();
  const host = new ActorHost({ clock, log: new MemoryLogger(), ...(onEscalate === undefined ? {} : { onEscalate }) });
  const run = async (ms: number) => {
    for (let t = 0; t < ms; t += 10) await clock.advanceAsync(10, settle);
  };
  return { clock, host, run };
}

describe('actor host', () => {
  it('handles messages in order and answers asks', async () => {
    const { host, run } = setup();
    host.spawn('c', counter);
    for (let i = 1; i <= 10; i++) expect(host.tell('c', { kind: 'add', n: i })).toBe(true);
    const answer = host.ask<number>('c', { kind: 'get' });
    await run(10);
    expect(await answer).toBe(55);
    expect(host.stats().actors).toEqual([{ name: 'c', mailbox: 0, processed: 11, restarts: 0 }]);
  });

  it('restarts a failing actor from its initial state after a backoff, and escalates past its budget', async () => {
    const escalated: string[] = [];
    const { host, run } = setup((name) => escalated.push(name));
    host.spawn('c', counter, { maxRestarts: 2, restartWindowMs: 60_000 });
    host.tell('c', { kind: 'add', n: 5 });
    host.tell('c', { kind: 'boom' });
    const afterRestart = host.ask<number>('c', { kind: 'get' });
    await run(50);
    // Still backing off (100 ms): the ask waits in the mailbox.
    expect(host.stats().actors[0]).toMatchObject({ mailbox: 1, restarts: 1 });
    await run(100);
    expect(await afterRestart).toBe(0);
    host.tell('c', { kind: 'boom' });
    await run(300);
    host.tell('c', { kind: 'boom' });
    await run(1_000);
    expect(escalated).toEqual(['c']);
    expect(host.tell('c', { kind: 'add', n: 1 })).toBe(false);
    expect(host.stats().actors).toEqual([]);
  });

  it('applies its overflow policy when the mailbox is full, never blocking the sender', async () => {
    const { host, run } = setup();
    host.spawn('newest', counter, { mailbox: 3 });
    host.spawn('oldest', counter, { mailbox: 3, overflow: 'drop-oldest' });
    const accepted = [1, 2, 3, 4, 5].map((n) => host.tell('newest', { kind: 'add', n }));
    expect(accepted).toEqual([true, true, true, false, false]);
    for (const n of [1, 2, 3, 4, 5]) host.tell('oldest', { kind: 'add', n });
    await run(10);
    const totals = Promise.all([host.ask('newest', { kind: 'get' }), host.ask('oldest', { kind: 'get' })]);
    await run(10);
    expect(await totals).toEqual([1 + 2 + 3, 3 + 4 + 5]);
    expect(host.stats().deadLetters).toBe(4);
  });

  it('turns asks to missing actors into dead letters at once, and times out or aborts silent ones', async () => {
    const { host, run } = setup();
    await expect(host.ask('nobody', { kind: 'get' })).rejects.toBeInstanceOf(DeadLetterError);
    host.spawn('c', counter);
    const silent = host.ask('c', { kind: 'silent' }, { timeoutMs: 200 });
    const aborted = new AbortController();
    const cancelled = host.ask('c', { kind: 'silent' }, { timeoutMs: 10_000, signal: aborted.signal });
    const silentResult = silent.catch((error: unknown) => error);
    const cancelledResult = cancelled.catch((error: unknown) => error);
    await run(100);
    aborted.abort();
    await run(200);
    expect(await silentResult).toBeInstanceOf(AskTimeoutError);
    expect(await cancelledResult).toBeInstanceOf(AbortedError);
    expect(host.stats().deadLetters).toBe(1);
  });
});
