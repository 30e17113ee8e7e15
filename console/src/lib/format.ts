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
