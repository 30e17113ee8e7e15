import type { DependencyEdge } from './closure.ts';
import { appendTo, compareText } from './order.ts';
import type { CompositionProblem } from './problems.ts';

/**
 * The `requires` cycles among `edges`, one per group of modules that all require each other
 * (a strongly connected component), named from its alphabetically first module along the
 * shortest way back to it: `a → b → c → a`. Breaking the reported cycle reveals any other in the
 * same group on the next preview. Recommends never make a cycle: they are soft, as in apt.
 */
export function findCycles(edges: readonly DependencyEdge[]): CompositionProblem[] {
  const graph = requiresGraph(edges);
  const problems: CompositionProblem[] = [];
  for (const component of stronglyConnected(graph)) {
    const start = component[0]!;
    const selfLoop = graph.get(start)?.includes(start) ?? false;
    if (component.length === 1 && !selfLoop) continue;
    const cycle = shortestCycle(graph, start, new Set(component));
    problems.push({ kind: 'dependency-cycle', severity: 'error', cycle, message: `dependency cycle: ${cycle.join(' → ')}` });
  }
  return problems;
}

function requiresGraph(edges: readonly DependencyEdge[]): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const edge of edges) {
    if (edge.type !== 'requires') continue;
    if (!graph.has(edge.to)) graph.set(edge.to, []);
    appendTo(graph, edge.from, edge.to);
  }
  for (const targets of graph.values()) targets.sort(compareText);
  return graph;
}

/** Tarjan's algorithm without recursion (a long chain must not overflow the stack); components sorted. */
function stronglyConnected(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const components: string[][] = [];
  for (const root of [...graph.keys()].sort(compareText)) {
    if (index.has(root)) continue;
    const work: { node: string; next: number }[] = [{ node: root, next: 0 }];
    visit(root);
    while (work.length > 0) {
      const frame = work[work.length - 1]!;
      const targets = graph.get(frame.node)!;
      if (frame.next < targets.length) {
        const target = targets[frame.next++]!;
        if (!index.has(target)) {
          visit(target);
          work.push({ node: target, next: 0 });
        } else if (onStack.has(target)) {
          low.set(frame.node, Math.min(low.get(frame.node)!, index.get(target)!));
        }
        continue;
      }
      work.pop();
      const parent = work[work.length - 1];
      if (parent !== undefined) low.set(parent.node, Math.min(low.get(parent.node)!, low.get(frame.node)!));
      if (low.get(frame.node) === index.get(frame.node)) components.push(popComponent(frame.node));
    }
  }
  return components.sort((a, b) => compareText(a[0]!, b[0]!));

  function visit(node: string): void {
    index.set(node, index.size);
    low.set(node, index.get(node)!);
    stack.push(node);
    onStack.add(node);
  }

  function popComponent(head: string): string[] {
    const component: string[] = [];
    for (;;) {
      const node = stack.pop()!;
      onStack.delete(node);
      component.push(node);
      if (node === head) return component.sort(compareText);
    }
  }
}

/** Breadth-first from `start` inside its component, neighbours in name order: deterministic. */
function shortestCycle(graph: ReadonlyMap<string, readonly string[]>, start: string, component: ReadonlySet<string>): string[] {
  const previous = new Map<string, string>();
  const frontier = [start];
  for (let at = 0; at < frontier.length; at++) {
    const node = frontier[at]!;
    for (const target of graph.get(node) ?? []) {
      if (!component.has(target)) continue;
      if (target === start) return [...pathTo(previous, start, node), start];
      if (previous.has(target)) continue;
      previous.set(target, node);
      frontier.push(target);
    }
  }
  // A strongly connected component always leads back to its own members.
  throw new Error(`no cycle through ${start} in its component`);
}

function pathTo(previous: ReadonlyMap<string, string>, start: string, end: string): string[] {
  const path = [end];
  while (path[0] !== start) path.unshift(previous.get(path[0]!)!);
  return path;
}
