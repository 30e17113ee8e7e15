import type { FleetEvent } from '../crdt-schema/index.ts';
import { type EventInput, eventIdOf } from '../mesh/index.ts';
import type { Behavior, Effect, PortOutcome } from './host.ts';
import type { MembersMessage, PlacementMember, SingletonContext, SingletonSpec } from './placement.ts';

export const INSTANCE_SILENCE_SINGLETON = 'sensor.instance-silence';
export const SILENT_KIND = 'system.instance_silent';
export const RECOVERED_KIND = 'system.instance_recovered';

/** The original's escalation: a member silent this long is critical. */
export const DEFAULT_CRITICAL_AFTER_MS = 33 * 60_000;

/** A member this sensor holds silent: since when (its first emission), at which incarnation, and whether escalated. */
interface Episode {
  readonly incarnation: number;
  readonly since: number;
  readonly escalated: boolean;
}

interface SilenceState {
  /** False until the event log has been read: what earlier owners emitted decides what is new. */
  readonly ready: boolean;
  readonly waiting?: MembersMessage;
  readonly episodes: Readonly<Record<string, Episode>>;
}

type SilenceMessage = MembersMessage | { readonly type: 'log'; readonly outcome: PortOutcome } | { readonly type: 'emitted'; readonly peer: string; readonly outcome: PortOutcome };

/**
 * Folds the log's silence events into open episodes: a silent (high) event opens one, a critical
 * one marks it escalated, a recovered event closes it. This is how a new owner of the sensor
 * continues where the last one stopped, after a failover.
 */
export function openEpisodes(events: readonly FleetEvent[]): Record<string, Episode> {
  const episodes: Record<string, Episode> = {};
  for (const event of [...events].sort((a, b) => a.at - b.at)) {
    const peer = event.subject;
    if (peer === undefined) continue;
    const incarnation = Number(event.payload?.['incarnation'] ?? 0);
    const open = episodes[peer];
    // A silent event at a newer incarnation than the open episode's begins a new one; a recovered
    // event (which names the incarnation the member came back with) closes only an older one. So
    // an episode closed and the next begun in one step, the two events at the same time, fold
    // the same whichever sorts first.
    if (event.kind === SILENT_KIND && event.severity === 'high' && (open === undefined || incarnation > open.incarnation)) episodes[peer] = { incarnation, since: event.at, escalated: false };
    else if (event.kind === SILENT_KIND && event.severity === 'critical' && open !== undefined && incarnation === open.incarnation) episodes[peer] = { ...open, escalated: true };
    else if (event.kind === RECOVERED_KIND && open !== undefined && open.incarnation < incarnation) delete episodes[peer];
  }
  return episodes;
}

/**
 * The instance-silence sensor (the original's InstanceStatus sensor): when failure detection
 * marks a member dead, `system.instance_silent` (high); still dead after `criticalAfterMs`, the
 * same kind at critical; alive again, `system.instance_recovered` (low). Each emission's id comes
 * from the member, its incarnation and the transition, and a new owner starts from the log, so
 * each transition is one event fleet-wide across failovers of the sensor itself.
 */
export function instanceSilenceBehavior(context: SingletonContext, criticalAfterMs: number): Behavior<SilenceState, SilenceMessage> {
  const emit = (peer: string, input: Omit<EventInput, 'singleton' | 'epoch'>): Effect => ({
    type: 'perform',
    port: 'events.emit',
    request: { ...input, singleton: context.name, epoch: context.epoch },
    then: (outcome) => ({ type: 'emitted', peer, outcome }),
  });

  const observe = (state: SilenceState, message: MembersMessage): { state: SilenceState; effects: Effect[] } => {
    const episodes: Record<string, Episode> = { ...state.episodes };
    const effects: Effect[] = [];
    const present = new Set(message.members.map((m) => m.peerId));
    for (const member of message.members) {
      let episode = episodes[member.peerId];
      if (member.state === 'dead' && episode !== undefined && member.incarnation > episode.incarnation) {
        // Dead again at a newer incarnation: it came back in between (it refuted the death), and
        // whoever saw that did not get its recovery into the log before it, too, went (a sensor
        // owner killed right after). The old episode ends and a new one begins; the recovered
        // event's id is the one that owner would have used, so it is not doubled if it arrives.
        delete episodes[member.peerId];
        effects.push(emit(member.peerId, recoveredEvent(member, episode, message.now, true)));
        episode = undefined;
      }
      if (member.state === 'dead' && episode === undefined) {
        episodes[member.peerId] = { incarnation: member.incarnation, since: message.now, escalated: false };
        effects.push(emit(member.peerId, silentEvent(member, 'high', message.now)));
      } else if (member.state === 'dead' && episode !== undefined && !episode.escalated && message.now - episode.since >= criticalAfterMs) {
        episodes[member.peerId] = { ...episode, escalated: true };
        effects.push(emit(member.peerId, { ...silentEvent({ ...member, incarnation: episode.incarnation }, 'critical', episode.since), id: eventIdOf(SILENT_KIND, member.peerId, episode.incarnation, 'critical') }));
      } else if ((member.state === 'alive' || member.state === 'left') && episode !== undefined && member.incarnation > episode.incarnation) {
        delete episodes[member.peerId];
        effects.push(emit(member.peerId, recoveredEvent(member, episode, message.now)));
      }
    }
    // A member revoked meanwhile is no longer watched.
    for (const peer of Object.keys(episodes)) if (!present.has(peer)) delete episodes[peer];
    return { state: { ready: true, episodes }, effects };
  };

  return {
    initial: () => ({ ready: false, episodes: {} }),
    step: (state, message) => {
      switch (message.type) {
        case 'members':
          if (state.ready) return observe(state, message);
          // The first snapshot asks for the log; later ones replace it until the log is read.
          return {
            state: { ...state, waiting: message },
            effects: state.waiting === undefined ? [{ type: 'perform', port: 'events.list', request: { kind: 'system.instance_*' }, then: (outcome) => ({ type: 'log', outcome }) }] : [],
          };
        case 'log': {
          if (!message.outcome.ok) throw new Error(`reading the event log failed: ${message.outcome.error}`);
          const ready: SilenceState = { ready: true, episodes: openEpisodes(message.outcome.value as FleetEvent[]) };
          return state.waiting === undefined ? { state: ready } : observe(ready, state.waiting);
        }
        case 'emitted': {
          // The log answers with the event it holds: its first emission is when the silence began.
          const episode = state.episodes[message.peer];
          if (!message.outcome.ok || episode === undefined) return { state };
          const event = (message.outcome.value as { event: FleetEvent }).event;
          if (event.kind !== SILENT_KIND || event.severity !== 'high' || event.at >= episode.since) return { state };
          // An answer about an earlier episode of this member (closed meanwhile) says nothing of this one.
          if (Number(event.payload?.['incarnation'] ?? 0) !== episode.incarnation) return { state };
          return { state: { ...state, episodes: { ...state.episodes, [message.peer]: { ...episode, since: event.at } } } };
        }
      }
    },
  };
}

function silentEvent(member: PlacementMember, severity: 'high' | 'critical', since: number): EventInput {
  const detail =
    severity === 'high'
      ? `${member.name} (${member.peerId}) is silent: failure detection marked it dead`
      : `${member.name} (${member.peerId}) has been silent since ${new Date(since).toISOString()}`;
  return { id: eventIdOf(SILENT_KIND, member.peerId, member.incarnation), kind: SILENT_KIND, severity, subject: member.peerId, detail, payload: { incarnation: member.incarnation, name: member.name } };
}

/**
 * The end of `episode`. `silentAgain`: the member is dead once more at a newer incarnation (it
 * came back in between, unseen by this owner), so the event says so rather than that it answers.
 */
function recoveredEvent(member: PlacementMember, episode: Episode, now: number, silentAgain = false): EventInput {
  const silentForS = Math.round((now - episode.since) / 1000);
  return {
    id: eventIdOf(RECOVERED_KIND, member.peerId, episode.incarnation),
    kind: RECOVERED_KIND,
    severity: 'low',
    subject: member.peerId,
    detail: silentAgain
      ? `${member.name} (${member.peerId}) came back within ${silentForS} s of going silent, and is silent again`
      : `${member.name} (${member.peerId}) answers again after ${silentForS} s of silence`,
    payload: { incarnation: member.incarnation, name: member.name, silentForS },
  };
}

/** The sensor as a singleton every node registers. */
export function instanceSilenceSpec(criticalAfterMs = DEFAULT_CRITICAL_AFTER_MS): SingletonSpec {
  return {
    name: INSTANCE_SILENCE_SINGLETON,
    observesMembers: true,
    behavior: (context) => instanceSilenceBehavior(context, criticalAfterMs) as Behavior<unknown, unknown>,
  };
}
