import { setFlagsFromString } from 'node:v8';

let tuned = false;

/**
 * Turns off V8's allocation-site pretenuring for this process (once; `POWERNODE_SIM_PRETENURING=1`
 * leaves it on). A simulated fleet's start makes long-lived objects at the same allocation sites
 * that, once the fleet is steady, make only short-lived ones — a timer, a request, a frame live
 * for a simulated millisecond — and V8, having seen the first kind survive, goes on allocating
 * the second kind straight into the old generation, where only a full collection frees them. At
 * 1,000 nodes that doubled the scavenges' time and added a 0.5 s mark-compact per simulated
 * minute (docs/SIMULATION.md §2026-12-03, night). Pretenuring is an optimization only:
 * turning it off changes no behaviour, and a simulation's trace hash stays the same.
 */
export function tuneHeapForSimulation(): void {
  if (tuned || process.env['POWERNODE_SIM_PRETENURING'] === '1') return;
  tuned = true;
  setFlagsFromString('--no-allocation-site-pretenuring');
}
