import { type FleetEvent, SEVERITIES } from './types.ts';

/** Small formatting helpers for the views. */

export function shortPeer(peerId: string): string {
  return peerId.length > 16 ? `${peerId.slice(0, 8)}…${peerId.slice(-6)}` : peerId;
}

export function ago(atMs: number | null | undefined, nowMs = Date.now()): string {
  if (atMs === null || atMs === undefined || atMs <= 0) return 'never';
  const seconds = Math.round((nowMs - atMs) / 1000);
  if (seconds < 2) return 'just now';
  if (seconds < 90) return `${seconds} s ago`;
  const minutes = Math.round(seconds / 60);
  if (minutes < 90) return `${minutes} min ago`;
  const hours = Math.round(minutes / 60);
  if (hours < 36) return `${hours} h ago`;
  return `${Math.round(hours / 24)} days ago`;
}

export function bytes(count: number): string {
  if (count < 1024) return `${count} B`;
  if (count < 1024 * 1024) return `${(count / 1024).toFixed(1)} KiB`;
  if (count < 1024 * 1024 * 1024) return `${(count / 1024 / 1024).toFixed(1)} MiB`;
  return `${(count / 1024 / 1024 / 1024).toFixed(2)} GiB`;
}

export function isoTime(atMs: number): string {
  return new Date(atMs).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

/** The peer that emitted an event. */
export function sourcePeer(event: FleetEvent): string {
  return typeof event.source === 'string' ? event.source : event.source.peer;
}

/** Who emitted an event, in words: the node, and the singleton and its epoch when one did. */
export function sourceText(event: FleetEvent): string {
  if (typeof event.source === 'string') return shortPeer(event.source);
  const { peer, singleton, epoch } = event.source;
  return singleton === undefined ? shortPeer(peer) : `${singleton}${epoch === undefined ? '' : ` #${epoch}`} on ${shortPeer(peer)}`;
}

/** Whether `event` passes a filter as the node applies it: severity is a floor, a kind ending in `*` a prefix. */
export function eventMatches(event: FleetEvent, filter: { readonly kind: string; readonly severity: string }): boolean {
  if (filter.severity !== '') {
    const floor = (SEVERITIES as readonly string[]).indexOf(filter.severity);
    if ((SEVERITIES as readonly string[]).indexOf(event.severity) < floor) return false;
  }
  if (filter.kind === '') return true;
  return filter.kind.endsWith('*') ? event.kind.startsWith(filter.kind.slice(0, -1)) : event.kind === filter.kind;
}

/** An event's detail as one line of text. */
export function detailText(detail: unknown): string {
  if (detail === null || detail === undefined) return '';
  if (typeof detail === 'string') return detail;
  try {
    return JSON.stringify(detail);
  } catch {
    return String(detail);
  }
}

/** A duration in words: `850 ms`, `12.3 s`, `4 min 5 s`, `2 h 10 min`. */
export function duration(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const seconds = Math.round(ms / 1000);
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min${seconds % 60 === 0 ? '' : ` ${seconds % 60} s`}`;
  const minutes = Math.round(seconds / 60);
  return `${Math.floor(minutes / 60)} h${minutes % 60 === 0 ? '' : ` ${minutes % 60} min`}`;
}

/** Which colour a lifecycle state gets: good, under way, bad, or over and quiet. */
export type Tone = 'ok' | 'busy' | 'warn' | 'bad' | 'quiet';

const TONES: Readonly<Record<string, Tone>> = {
  complete: 'ok', running: 'ok', live: 'ok', active: 'ok', blessed: 'ok', alive: 'ok',
  pending: 'busy', scheduled: 'busy', starting: 'busy', stopping: 'busy', rebooting: 'busy', provisioning: 'busy', staging: 'busy', built: 'busy', draining: 'busy',
  suspect: 'warn', paused: 'warn',
  failed: 'bad', aborted: 'bad', error: 'bad', terminated: 'bad', dead: 'bad',
};

export function toneOf(state: string): Tone {
  return TONES[state] ?? 'quiet';
}

/**
 * Who made a transition, in words: a member (or a node this view knows) by its name, any other
 * peer id shortened, and an operator's key as `operator` and its first 8 characters.
 */
export function actorText(by: string, names: ReadonlyMap<string, string>): string {
  const name = names.get(by);
  if (name !== undefined) return name;
  if (/^(12D3KooW|Qm)[1-9A-HJ-NP-Za-km-z]{20,}$/.test(by)) return shortPeer(by);
  return `operator ${by.slice(0, 8)}`;
}

/** A member's name by peer id, or the id shortened when it is not (or no longer) a member. */
export function nodeName(peerId: string, names: ReadonlyMap<string, string>): string {
  return names.get(peerId) ?? shortPeer(peerId);
}

/**
 * A key that changes whenever one of the documents `docId` picks changes (their digests, from
 * the live status), and, with `withMembers`, whenever a member's state does: views that read on
 * their own use it to read again exactly when there is something new.
 */
export function docsVersion(status: { readonly docs: ReadonlyArray<{ readonly id: string; readonly digest: string }>; readonly members: ReadonlyArray<{ readonly peerId: string; readonly state: string }> }, pick: (docId: string) => boolean, withMembers = false): string {
  const docs = status.docs.filter((d) => pick(d.id)).map((d) => `${d.id}=${d.digest}`);
  const members = withMembers ? status.members.map((m) => `${m.peerId}:${m.state}`) : [];
  return [...docs, ...members].join(',');
}

/** `1 module`, `2 modules`; `many` for words that do not take an s. */
export function count(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}
