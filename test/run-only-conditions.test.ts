import { describe, expect, it } from 'vitest';
import { runOnlyParts } from '../src/core/conditions.js';
import { parseSettings } from '../src/core/gate/settings.js';
import { parseJourneySpec } from '../src/core/journey-spec.js';

// `message` and `since: entry` ask about a journey run. A trigger, an audience and a suppression rule are
// decided with no run: a journey whose trigger asked about a message was published, and then every
// ingestion of its trigger event failed with a 500. Those sites now refuse them, naming the path.

const base = { key: 'k', name: 'K', steps: { welcome: { send: { channel: 'email', content: { email: { subject: 'Hi', text: 'Hello' } } } } } };

describe('conditions that need a run', () => {
  it('are found anywhere in a condition, with their paths', () => {
    const parts = runOnlyParts({ all: [{ trait: 'plan', op: 'exists' }, { not: { message: 'welcome', status: 'sent' } }, { event: 'A', where: { any: [{ event: 'B', since: 'entry' }] } }] });
    expect(parts.map((p) => p.path.join('.'))).toEqual(['all.1.not.message', 'all.2.where.any.0.since']);
    expect(runOnlyParts({ event: 'A', within: 'P3D' })).toEqual([]);
  });

  it('are refused in a trigger and an audience', () => {
    const r = parseJourneySpec({
      ...base,
      trigger: { event: 'Go', where: { message: 'welcome', status: 'sent' } },
      audience: { all: [{ event: 'Bought', since: 'entry' }] },
    });
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.errors).toEqual([
        { path: 'trigger.where.message', message: expect.stringMatching(/needs a journey run/) },
        { path: 'audience.all[0].since', message: expect.stringMatching(/needs a journey run/) },
      ]);
    }
  });

  it('are taken in the goal, exits, branches and wait_for', () => {
    const r = parseJourneySpec({
      ...base,
      trigger: { event: 'Go' },
      goal: { event: 'Bought', where: { message: 'welcome', status: 'opened' }, within: 'P7D' },
      exit_when: [{ event: 'Quit', where: { event: 'Complained', since: 'entry' } }],
    });
    expect(r.ok).toBe(true);
  });

  it('are refused in a suppression rule', () => {
    const r = parseSettings({ suppression: [{ id: 's1', when: { any: [{ message: 'welcome', status: 'sent' }] }, reason: 'never' }] });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.errors[0]).toMatchObject({ path: expect.stringMatching(/suppression.*0.*when.*any.*0.*message/), message: expect.stringMatching(/journey run/) });
  });
});
