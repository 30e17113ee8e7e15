import { describe, expect, it } from 'vitest';
import { RECOVERED_KIND, SILENT_KIND, instanceSilenceBehavior, openEpisodes } from '../../actors/instance-silence.ts';
import type { Effect } from '../../actors/host.ts';
import type { MembersMessage, PlacementMember } from '../../actors/placement.ts';
import type { FleetEvent } from '../../crdt-schema/index.ts';
import { eventIdOf } from '../../mesh/index.ts';

const context = { name: 'sensor.instance-silence', epoch: 7, owner: 'self', since: 0 };
const member = (peerId: string, state: PlacementMember['state'], incarnation: number): PlacementMember => ({ peerId, name: peerId, state, stateSince: 0, upSince: 0, incarnation, labels: {} });
const members = (now: number, ...list: PlacementMember[]): MembersMessage => ({ type: 'members', now, members: list });
const silentAt = (peer: string, incarnation: number, at: number): FleetEvent =>
  ({ id: eventIdOf(SILENT_KIND, peer, incarnation), kind: SILENT_KIND, severity: 'high', subject: peer, at, payload: { incarnation } }) as unknown as FleetEvent;

const recoveredAt = (peer: string, episodeIncarnation: number, backAt: number, at: number): FleetEvent =>
  ({ id: eventIdOf(RECOVERED_KIND, peer, episodeIncarnation), kind: RECOVERED_KIND, severity: 'low', subject: peer, at, payload: { incarnation: backAt } }) as unknown as FleetEvent;

/** What the sensor emitted: each event's kind and id, in order. */
const emitted = (effects: readonly Effect[] | undefined): Array<{ kind: string; id: string }> =>
  (effects ?? []).flatMap((e) => (e.type === 'perform' && e.port === 'events.emit' ? [{ kind: (e.request as { kind: string }).kind, id: (e.request as { id: string }).id }] : []));

/** A sensor that has read `log` and then saw `first`. */
function started(log: FleetEvent[], first: MembersMessage) {
  const behavior = instanceSilenceBehavior(context, 33 * 60_000);
  const asked = behavior.step(behavior.initial(), first);
  expect(asked.effects?.[0]).toMatchObject({ type: 'perform', port: 'events.list' });
  const read = behavior.step(asked.state, { type: 'log', outcome: { ok: true, value: log } });
  return { behavior, state: read.state, effects: read.effects };
}

describe('instance-silence sensor', () => {
  it('reports a death once per incarnation and the recovery when the member returns at a higher one', () => {
    const { behavior, state, effects } = started([], members(1_000, member('a', 'alive', 5)));
    expect(emitted(effects)).toEqual([]);
    const dead = behavior.step(state, members(2_000, member('a', 'dead', 5)));
    expect(emitted(dead.effects)).toEqual([{ kind: SILENT_KIND, id: eventIdOf(SILENT_KIND, 'a', 5) }]);
    expect(emitted(behavior.step(dead.state, members(3_000, member('a', 'dead', 5))).effects)).toEqual([]);
    const back = behavior.step(dead.state, members(4_000, member('a', 'alive', 6)));
    expect(emitted(back.effects)).toEqual([{ kind: RECOVERED_KIND, id: eventIdOf(RECOVERED_KIND, 'a', 5) }]);
  });

  it('continues an episode an earlier owner opened for the same incarnation', () => {
    const { effects } = started([silentAt('a', 5, 500)], members(1_000, member('a', 'dead', 5)));
    expect(emitted(effects)).toEqual([]);
  });

  it("ends an earlier owner's episode and reports a new death when the member is dead at a newer incarnation", () => {
    // The previous owner reported a's death at incarnation 5, saw a refute (6) and was killed
    // before its recovered event replicated; a then died too. Seen in the five-process test: the
    // kill went unreported, the new owner taking the episode for still open.
    const { effects } = started([silentAt('a', 5, 500)], members(1_000, member('a', 'dead', 6)));
    expect(emitted(effects)).toEqual([
      { kind: RECOVERED_KIND, id: eventIdOf(RECOVERED_KIND, 'a', 5) },
      { kind: SILENT_KIND, id: eventIdOf(SILENT_KIND, 'a', 6) },
    ]);
  });

  it('folds an episode closed and the next begun at the same time the same whichever sorts first', () => {
    // The step above writes both at one instant: the log's order between them is the ids'.
    const events = [silentAt('a', 5, 500), recoveredAt('a', 5, 6, 1_000), silentAt('a', 6, 1_000)];
    for (const order of [events, [events[0]!, events[2]!, events[1]!]]) expect(openEpisodes(order)).toEqual({ a: { incarnation: 6, since: 1_000, escalated: false } });
    // A plain recovery closes the episode.
    expect(openEpisodes([silentAt('a', 5, 500), recoveredAt('a', 5, 6, 2_000)])).toEqual({});
  });
});
