// The journey spec's step graph: where each step leads, a readable step order, and the cycles no wait
// breaks (a run would loop without ever yielding).

import { formatPath } from './journey-schema.js';
import type { JourneySpec, SpecError, Step, WaitStep } from './journey-types.js';
import { parseDuration } from './time.js';

/** The step ids a step continues to (all paths), without duplicates. */
export function successors(step: Step): string[] {
  const out: string[] = [];
  const add = (ids: string[]) => ids.forEach((id) => out.includes(id) || out.push(id));
  switch (step.type) {
    case 'send':
    case 'wait':
    case 'update_profile':
      add(step.next);
      break;
    case 'wait_for':
      add(step.onEvent);
      add(step.onTimeout);
      break;
    case 'branch':
      step.branch.cases.forEach((c) => add(c.next));
      add(step.branch.default);
      break;
    case 'split':
      step.split.paths.forEach((p) => add(p.next));
      break;
    case 'exit':
      break;
  }
  return out;
}

/** The step ids in map order; the first is where a run starts. */
export function stepOrder(spec: JourneySpec): string[] {
  return Object.keys(spec.steps);
}

// ---------------------------------------------------------------------------------------------------------
// Cycles

/**
 * The shortest wait that breaks a cycle. A loop through a 1 ms wait is legal time-wise but fires once per
 * millisecond for every customer in it: a clock advance of a day would take 86 million laps per run.
 */
export const MIN_CYCLE_WAIT = 'PT1M';
const MIN_CYCLE_WAIT_MS = parseDuration(MIN_CYCLE_WAIT)!.toMillis();

function atLeastMinCycle(d: string): boolean {
  const parsed = parseDuration(d);
  return parsed !== null && parsed.toMillis() >= MIN_CYCLE_WAIT_MS;
}

/** `until` a time of day waits for the next one: at least a day per lap. */
function waitsLong(w: WaitStep): boolean {
  return 'until' in w || atLeastMinCycle(w.duration);
}

/**
 * A cycle through sends, branches, splits and profile updates only would loop forever without time passing.
 * Such cycles exist exactly when the graph without the waits of at least MIN_CYCLE_WAIT (for wait_for, its
 * timeout) has one: one error per strongly connected component of that graph that holds a cycle, naming
 * one cycle through it.
 */
export function findWaitlessCycles(steps: Step[], byId: ReadonlyMap<string, Step>): SpecError[] {
  const order = new Map(steps.map((s, i) => [s.id, i]));
  const passesTime = (s: Step) => (s.type === 'wait' && waitsLong(s.wait)) || (s.type === 'wait_for' && atLeastMinCycle(s.wait_for.timeout));
  const edges = new Map<string, string[]>();
  for (const s of steps) {
    if (passesTime(s)) continue;
    edges.set(s.id, successors(s).filter((t) => byId.has(t) && !passesTime(byId.get(t)!)));
  }

  // Tarjan's algorithm, iterative.
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const components: string[][] = [];
  let counter = 0;
  for (const root of edges.keys()) {
    if (index.has(root)) continue;
    const work: { v: string; i: number }[] = [{ v: root, i: 0 }];
    index.set(root, counter);
    low.set(root, counter++);
    stack.push(root);
    onStack.add(root);
    while (work.length > 0) {
      const frame = work[work.length - 1]!;
      const out = edges.get(frame.v)!;
      if (frame.i < out.length) {
        const w = out[frame.i++]!;
        if (!index.has(w)) {
          index.set(w, counter);
          low.set(w, counter++);
          stack.push(w);
          onStack.add(w);
          work.push({ v: w, i: 0 });
        } else if (onStack.has(w)) {
          low.set(frame.v, Math.min(low.get(frame.v)!, index.get(w)!));
        }
        continue;
      }
      work.pop();
      const parent = work[work.length - 1];
      if (parent) low.set(parent.v, Math.min(low.get(parent.v)!, low.get(frame.v)!));
      if (low.get(frame.v) === index.get(frame.v)) {
        const comp: string[] = [];
        let w: string;
        do {
          w = stack.pop()!;
          onStack.delete(w);
          comp.push(w);
        } while (w !== frame.v);
        components.push(comp);
      }
    }
  }

  const errors: { at: number; error: SpecError }[] = [];
  for (const comp of components) {
    const members = new Set(comp);
    const start = comp.reduce((a, b) => (order.get(a)! <= order.get(b)! ? a : b));
    if (comp.length === 1 && !edges.get(start)!.includes(start)) continue;
    // Shortest way back to `start` inside the component (BFS).
    const prev = new Map<string, string>();
    const queue = [start];
    let found = false;
    while (queue.length > 0 && !found) {
      const v = queue.shift()!;
      for (const w of edges.get(v)!) {
        if (!members.has(w)) continue;
        if (w === start) {
          prev.set(start, v);
          found = true;
          break;
        }
        if (!prev.has(w)) {
          prev.set(w, v);
          queue.push(w);
        }
      }
    }
    // Walk the predecessors back from the closing edge: [start, …, start].
    const cycle = [start];
    for (let v = prev.get(start)!; v !== start; v = prev.get(v)!) cycle.unshift(v);
    cycle.unshift(start);
    errors.push({
      at: order.get(start)!,
      error: {
        path: formatPath(['steps', start]),
        message: cycle.some((id) => ['wait', 'wait_for'].includes(byId.get(id)!.type))
          ? `cycle with only short waits: ${cycle.join(' → ')}; a wait in a loop must last at least ${MIN_CYCLE_WAIT} (a wait_for's timeout too), or every customer in it would go round once per few milliseconds`
          : `cycle without a wait: ${cycle.join(' → ')}; it would loop forever without time passing (add a wait or wait_for step to it)`,
      },
    });
  }
  return errors.sort((a, b) => a.at - b.at).map((e) => e.error);
}

