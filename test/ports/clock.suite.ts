import { describe, expect, it } from 'vitest';
import { AbortedError, type Clock, TimeoutError, monotonicNow, sleep, withTimeout } from '../../mesh/index.ts';

/** The Clock contract. `advance` moves the adapter's time (real time for the system clock). */
export function runClockSuite(name: string, create: () => { clock: Clock; advance: (ms: number) => Promise<void> }): void {
  describe(`Clock contract: ${name}`, () => {
    it('fires timers in due order, not creation order', async () => {
      const { clock, advance } = create();
      const fired: string[] = [];
      clock.setTimeout(() => fired.push('late'), 30);
      clock.setTimeout(() => fired.push('early'), 5);
      await advance(60);
      expect(fired).toEqual(['early', 'late']);
    });

    it('does not fire a cleared timer', async () => {
      const { clock, advance } = create();
      let fired = false;
      const id = clock.setTimeout(() => {
        fired = true;
      }, 5);
      clock.clearTimeout(id);
      await advance(20);
      expect(fired).toBe(false);
    });

    it('holds a timer longer than 24.8 days (more than a Node timer can hold) until it is due', async () => {
      const { clock, advance } = create();
      let fired = false;
      const id = clock.setTimeout(() => {
        fired = true;
      }, 90 * 24 * 3_600_000);
      await advance(30);
      expect(fired).toBe(false);
      clock.clearTimeout(id);
    });

    it('moves now() forward as time passes', async () => {
      const { clock, advance } = create();
      const before = clock.now();
      await advance(20);
      expect(clock.now()).toBeGreaterThanOrEqual(before + 15);
    });

    it('moves its monotonic reading forward as time passes, never back', async () => {
      const { clock, advance } = create();
      const before = monotonicNow(clock);
      await advance(20);
      const after = monotonicNow(clock);
      expect(after).toBeGreaterThanOrEqual(before + 15);
      expect(monotonicNow(clock)).toBeGreaterThanOrEqual(after);
    });

    it('sleep resolves after its delay and rejects when aborted', async () => {
      const { clock, advance } = create();
      let slept = false;
      const done = sleep(clock, 5).then(() => {
        slept = true;
      });
      await advance(20);
      await done;
      expect(slept).toBe(true);
      const controller = new AbortController();
      const aborted = sleep(clock, 10_000, controller.signal);
      controller.abort();
      await expect(aborted).rejects.toBeInstanceOf(AbortedError);
    });

    it('withTimeout rejects a promise that outlives its deadline', async () => {
      const { clock, advance } = create();
      const never = new Promise<never>(() => {});
      const raced = withTimeout(clock, never, 5, 'the test operation');
      const check = expect(raced).rejects.toBeInstanceOf(TimeoutError);
      await advance(20);
      await check;
      await expect(withTimeout(clock, Promise.resolve(7), 1000, 'x')).resolves.toBe(7);
    });
  });
}
