import { MEMBER_STATES, type Member, type MemberState } from './types.ts';

export interface MemberQuery {
  /** Free text: matches name, peer id, hostname, address or a label (`key=value` or part of one). */
  readonly text: string;
  /** Empty: every state. */
  readonly states: ReadonlySet<MemberState>;
}

export type MemberCounts = Record<MemberState, number> & { total: number; connected: number };

export function countMembers(members: readonly Member[]): MemberCounts {
  const counts = { total: members.length, connected: 0, alive: 0, suspect: 0, dead: 0, left: 0 };
  for (const member of members) {
    counts[member.state] += 1;
    if (member.connected) counts.connected += 1;
  }
  return counts;
}

/** Trouble first (dead, suspect), then by name and peer id, so a failing node is seen at once. */
const STATE_ORDER: Record<MemberState, number> = { dead: 0, suspect: 1, alive: 2, left: 3 };

export function compareMembers(a: Member, b: Member): number {
  return STATE_ORDER[a.state] - STATE_ORDER[b.state] || a.name.localeCompare(b.name) || (a.peerId < b.peerId ? -1 : a.peerId > b.peerId ? 1 : 0);
}

function matches(member: Member, words: readonly string[]): boolean {
  const haystack = [member.name, member.peerId, member.hostname ?? '', member.arch ?? '', ...member.addrs, ...Object.entries(member.labels).map(([k, v]) => `${k}=${v}`)]
    .join('\n')
    .toLowerCase();
  return words.every((word) => haystack.includes(word));
}

/** The members to show for `query`, sorted by {@link compareMembers}. */
export function filterMembers(members: readonly Member[], query: MemberQuery): Member[] {
  const words = query.text.toLowerCase().split(/\s+/).filter(Boolean);
  const out = members.filter((m) => (query.states.size === 0 || query.states.has(m.state)) && (words.length === 0 || matches(m, words)));
  return out.sort(compareMembers);
}

export { MEMBER_STATES };
