import { createHash } from 'node:crypto';

/** A node's admission of another, as recorded in the admitting node's own document. */
export interface AdmissionRecord {
  readonly tokenHash: string;
  readonly peerId: string;
  readonly name: string;
  readonly admittedAt: number;
  /** The admitting member. */
  readonly admittedBy: string;
}

export interface MembershipMember {
  readonly peerId: string;
  readonly name: string;
  readonly joinedAt: number;
  /** `founder`, or the admitting member's peer id. */
  readonly admittedBy: string;
  readonly tokenHash?: string;
}

/** An admission that lost to another use of the same token (partition). */
export interface LostAdmission {
  readonly peerId: string;
  readonly tokenHash: string;
  readonly winner: string;
}

/** Which of two admissions with one token wins: lowest SHA-256(tokenHash ‖ peerId), on every node alike. */
export function admissionRank(tokenHash: string, peerId: string): string {
  return createHash('sha256').update(`${tokenHash}\u0000${peerId}`).digest('hex');
}

/**
 * The fleet's members: the founder, then every node admitted by a member with a valid grant.
 * A token admits one node: when two admissions used it (partitioned members each redeemed it),
 * the one with the lowest {@link admissionRank} wins and the other is reported as lost. Three
 * set-level steps, so the result never depends on the order records were seen in:
 * 1. keep admissions whose admitter is reachable from the founder through valid admissions;
 * 2. per token, the winner among those is the lowest (rank, admitter);
 * 3. members are the founder and everyone reachable through winning admissions.
 * Pure: grant validity comes from `isValidAdmission`.
 */
export function deriveMembership(
  founder: { readonly peerId: string; readonly name: string; readonly at: number },
  admissions: readonly AdmissionRecord[],
  isValidAdmission: (admission: AdmissionRecord) => boolean,
): { members: MembershipMember[]; lost: LostAdmission[] } {
  const valid = admissions.filter((a) => a.peerId !== founder.peerId && isValidAdmission(a));
  // Each admission's order key is computed once (a hash), not on every comparison.
  const keys = new Map<AdmissionRecord, string>(valid.map((a) => [a, orderKey(a)]));
  const reachable = closure(founder.peerId, valid);
  const eligible = valid.filter((a) => reachable.has(a.admittedBy));
  const winners = new Map<string, AdmissionRecord>();
  for (const admission of eligible) {
    const current = winners.get(admission.tokenHash);
    if (current === undefined || keys.get(admission)! < keys.get(current)!) winners.set(admission.tokenHash, admission);
  }
  const memberIds = closure(founder.peerId, [...winners.values()]);
  const members: MembershipMember[] = [{ peerId: founder.peerId, name: founder.name, joinedAt: founder.at, admittedBy: 'founder' }];
  const listed = new Set([founder.peerId]);
  for (const admission of [...winners.values()].sort((a, b) => (keys.get(a)! < keys.get(b)! ? -1 : 1))) {
    if (!memberIds.has(admission.peerId) || !memberIds.has(admission.admittedBy) || listed.has(admission.peerId)) continue;
    listed.add(admission.peerId);
    members.push({ peerId: admission.peerId, name: admission.name, joinedAt: admission.admittedAt, admittedBy: admission.admittedBy, tokenHash: admission.tokenHash });
  }
  const lost = eligible
    .filter((a) => winners.get(a.tokenHash)!.peerId !== a.peerId)
    .map((a) => ({ peerId: a.peerId, tokenHash: a.tokenHash, winner: winners.get(a.tokenHash)!.peerId }))
    .sort((a, b) => (a.peerId < b.peerId ? -1 : a.peerId > b.peerId ? 1 : 0));
  return { members: members.sort((a, b) => (a.peerId < b.peerId ? -1 : 1)), lost };
}

function orderKey(admission: AdmissionRecord): string {
  return `${admissionRank(admission.tokenHash, admission.peerId)}\u0000${admission.admittedBy}`;
}

/** Everyone reachable from `root` through `admissions` (admitter → admitted). */
function closure(root: string, admissions: readonly AdmissionRecord[]): Set<string> {
  const byAdmitter = new Map<string, string[]>();
  for (const a of admissions) {
    const admitted = byAdmitter.get(a.admittedBy);
    if (admitted === undefined) byAdmitter.set(a.admittedBy, [a.peerId]);
    else admitted.push(a.peerId);
  }
  const seen = new Set([root]);
  const stack = [root];
  while (stack.length > 0) {
    for (const next of byAdmitter.get(stack.pop()!) ?? []) {
      if (seen.has(next)) continue;
      seen.add(next);
      stack.push(next);
    }
  }
  return seen;
}
