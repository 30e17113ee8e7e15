import { fail, integerOf, objectOf, textOf } from './input.ts';
import { CATALOG_LIMITS } from './limits.ts';

/** One rule: `event` moves anything in `from` to `to`. */
export interface TransitionRule<S extends string, E extends string> {
  readonly event: E;
  readonly from: readonly S[];
  readonly to: S;
}

/**
 * Thrown when an event is not allowed in the current state. `allowed` lists what is allowed from
 * there (events, or target states for a machine whose events are its targets), in rule order.
 */
export class IllegalTransitionError extends Error {
  override name = 'IllegalTransitionError';
  readonly machine: string;
  readonly from: string;
  readonly event: string;
  readonly allowed: readonly string[];

  constructor(machine: string, from: string, event: string, allowed: readonly string[], verb: string) {
    const options = allowed.length === 0 ? `nothing (${from} is final)` : allowed.join(', ');
    const article = /^[aeiou]/.test(machine) ? 'an' : 'a';
    super(`${article} ${machine} that is ${from} cannot ${verb} ${event}; from ${from} it can ${verb}: ${options}`);
    this.machine = machine;
    this.from = from;
    this.event = event;
    this.allowed = allowed;
  }
}

/** A finite state machine given as rules; pure: it computes states and never holds one. */
export class StateMachine<S extends string, E extends string> {
  readonly machine: string;
  readonly rules: readonly TransitionRule<S, E>[];
  private readonly verb: string;

  /** `verb` reads before an event in messages: `take` for events, `move to` when events are target states. */
  constructor(machine: string, rules: readonly TransitionRule<S, E>[], verb = 'take') {
    this.machine = machine;
    this.rules = rules;
    this.verb = verb;
  }

  /** The state `event` leads to from `from`; throws {@link IllegalTransitionError} if it is not allowed. */
  next(from: S, event: E): S {
    const rule = this.rules.find((candidate) => candidate.event === event && candidate.from.includes(from));
    if (rule === undefined) throw new IllegalTransitionError(this.machine, from, event, this.allowed(from), this.verb);
    return rule.to;
  }

  /** The events allowed from `from`, in rule order. */
  allowed(from: S): E[] {
    return this.rules.filter((rule) => rule.from.includes(from)).map((rule) => rule.event);
  }
}

/** Who made a transition, under which epoch, why and when. */
export interface TransitionActor {
  /** An operator's public key or a node's peer id. */
  readonly by: string;
  /** The fencing epoch of the writer (a dispatcher's lease epoch, or 0 for an operator). */
  readonly epoch: number;
  readonly reason: string;
  /** Milliseconds since 1970 on the writer's clock. */
  readonly at: number;
}

/** A transition as it is recorded: every state change of an instance or task leaves one. */
export interface TransitionRecord<S extends string, E extends string> extends TransitionActor {
  readonly from: S;
  readonly to: S;
  readonly event: E;
}

/** Checks a transition's actor from outside; throws {@link CatalogInputError}. */
export function transitionActorOf(value: unknown): TransitionActor {
  const raw = objectOf(value, 'transition', ['by', 'epoch', 'reason', 'at']);
  const by = textOf(raw['by'], 'transition.by', CATALOG_LIMITS.actorCharsMax);
  if (by.length === 0) fail('transition.by', 'must name who made the transition (an operator key or a peer id)');
  return {
    by,
    epoch: integerOf(raw['epoch'], 'transition.epoch', 0, Number.MAX_SAFE_INTEGER),
    reason: textOf(raw['reason'] ?? '', 'transition.reason', CATALOG_LIMITS.reasonCharsMax),
    at: integerOf(raw['at'], 'transition.at', 0, Number.MAX_SAFE_INTEGER),
  };
}

/** Applies `event` and returns the record of it; throws {@link IllegalTransitionError} or {@link CatalogInputError}. */
export function recordTransition<S extends string, E extends string>(machine: StateMachine<S, E>, from: S, event: E, actor: TransitionActor): TransitionRecord<S, E> {
  const checked = transitionActorOf(actor);
  return { from, to: machine.next(from, event), event, ...checked };
}
