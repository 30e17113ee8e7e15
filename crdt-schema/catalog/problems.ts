import { compareText } from './order.ts';

/**
 * Something wrong with a composition. `error` problems make a preview not ok (applying refuses
 * it); `warning` problems are reported and do not block, as in the original.
 */
export type CompositionProblem =
  | { readonly kind: 'unknown-module'; readonly severity: 'error'; readonly module: string; readonly message: string }
  | { readonly kind: 'missing-dependency'; readonly severity: 'error'; readonly module: string; readonly dependency: string; readonly message: string }
  | {
      readonly kind: 'ambiguous-dependency';
      readonly severity: 'error';
      readonly module: string;
      readonly dependency: string;
      readonly providers: readonly string[];
      readonly message: string;
    }
  | { readonly kind: 'dependency-cycle'; readonly severity: 'error'; readonly cycle: readonly string[]; readonly message: string }
  | { readonly kind: 'module-conflict'; readonly severity: 'error'; readonly module: string; readonly conflictsWith: string; readonly declared: string; readonly message: string }
  | { readonly kind: 'instance-collision'; readonly severity: 'error'; readonly category: string; readonly modules: readonly string[]; readonly message: string }
  | { readonly kind: 'protected-overlap'; readonly severity: 'warning'; readonly claimer: string; readonly other: string; readonly paths: readonly string[]; readonly message: string }
  | { readonly kind: 'missing-recommendation'; readonly severity: 'warning'; readonly module: string; readonly dependency: string; readonly message: string };

export type ProblemKind = CompositionProblem['kind'];

/** Problems in a fixed order (kind, then message), so equal compositions report alike. */
export function sortProblems<T extends CompositionProblem>(problems: readonly T[]): T[] {
  return [...problems].sort((a, b) => compareText(a.kind, b.kind) || compareText(a.message, b.message));
}
