/** At most this many violations of each kind are kept (a broken run would repeat them). */
const VIOLATIONS_KEPT = 10;

/**
 * Who holds each pool member, as the fleet's answers and records tell it, and the two things that
 * must never happen (docs/SIMULATION.md §Tasks and pools): a member held by a claim while another
 * of its claims has not ended, and one claim id on two members. A claim starts when it is first
 * answered or seen in a record and ends when its release is answered or a record of its end is
 * seen; once ended it never starts again (a lagging copy of an old record is not a new claim).
 */
export class ClaimLedger {
  readonly memberViolations: string[] = [];
  readonly claimViolations: string[] = [];
  /** Claims not ended, by member. */
  readonly #holding = new Map<string, Set<string>>();
  /** `member claimId` pairs whose claim ended. */
  readonly #ended = new Set<string>();
  /** Every claim seen, with the members it named. */
  readonly #members = new Map<string, Set<string>>();
  /** The member each claim id was answered with. */
  readonly #answered = new Map<string, string>();
  readonly #name: (peer: string) => string;

  /** `name` shows a member in violations (n3 rather than its peer id). */
  constructor(name: (peer: string) => string = (peer) => peer) {
    this.#name = name;
  }

  /** Claim ids seen so far. */
  get claims(): number {
    return this.#members.size;
  }

  hasEnded(member: string, claimId: string): boolean {
    return this.#ended.has(`${member} ${claimId}`);
  }

  /** An acquire was answered: `claimId` holds `member`. */
  answered(atMs: number, claimId: string, member: string): void {
    const before = this.#answered.get(claimId);
    if (before !== undefined && before !== member) this.#violate(this.claimViolations, `at ${Math.round(atMs)} ms claim ${claimId} was answered with ${this.#name(member)}, earlier with ${this.#name(before)}`);
    this.#answered.set(claimId, member);
    this.seen(atMs, member, claimId, 'answered');
  }

  /** `claimId` on `member` ended (its release was answered or recorded). */
  ended(member: string, claimId: string): void {
    const key = `${member} ${claimId}`;
    if (this.#ended.has(key)) return;
    this.#ended.add(key);
    this.#holding.get(member)?.delete(claimId);
  }

  /** `claimId` on `member` was answered or recorded (`source` says where, for the violation). */
  seen(atMs: number, member: string, claimId: string, source: string): void {
    if (this.hasEnded(member, claimId)) return;
    const members = this.#members.get(claimId) ?? new Set<string>();
    if (!members.has(member)) {
      members.add(member);
      this.#members.set(claimId, members);
      if (members.size > 1) this.#violate(this.claimViolations, `at ${Math.round(atMs)} ms claim ${claimId} is on ${members.size} members (${[...members].map(this.#name).join(', ')}; ${source})`);
    }
    const holding = this.#holding.get(member) ?? new Set<string>();
    if (holding.has(claimId)) return;
    if (holding.size > 0) this.#violate(this.memberViolations, `at ${Math.round(atMs)} ms ${this.#name(member)} is held by claim ${claimId} (${source}) while ${[...holding].join(', ')} had not ended`);
    holding.add(claimId);
    this.#holding.set(member, holding);
  }

  #violate(list: string[], text: string): void {
    if (list.length < VIOLATIONS_KEPT) list.push(text);
  }
}
