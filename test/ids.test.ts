import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { newId } from '../src/lib/ids.js';
import { legacyMessageId, messageId } from '../src/engine/run-store.js';

const TIME_CHARS = 10;
const timeOf = (id: string) => id.slice(id.indexOf('_') + 1, id.indexOf('_') + 1 + TIME_CHARS);
const encode = (ms: number) => newId('x', ms).slice(2, 2 + TIME_CHARS);

describe('newId', () => {
  it('is strictly increasing within a process, whatever times it is given', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: Date.now() + 365 * 86_400_000 }), { minLength: 1, maxLength: 200 }), (times) => {
        let last = '';
        for (const t of times) {
          const id = newId('run', t).slice(4);
          expect(id > last, `${id} after ${last}`).toBe(true);
          expect(id).toMatch(/^[0-9a-hjkmnp-tv-z]{26}$/);
          last = id;
        }
      }),
    );
  });

  it('keeps the time part when the clock moves forward', () => {
    const later = Date.now() + 10 * 365 * 86_400_000;
    const id = newId('evt', later);
    expect(id.startsWith('evt_')).toBe(true);
    expect(timeOf(id)).toBe(timeOf(`evt_${encode(later)}`));
  });

  it('makes many ids in one millisecond without repeating (a virtual clock batch)', () => {
    const at = Date.now() + 20 * 365 * 86_400_000;
    const ids = Array.from({ length: 50_000 }, () => newId('wait', at));
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).toEqual(ids);
  });
});

describe('messageId', () => {
  it('is deterministic and starts with its run id', () => {
    const run = newId('run');
    const id = messageId(run, 'welcome', 0);
    expect(messageId(run, 'welcome', 0)).toBe(id);
    expect(id.startsWith(`msg_${run.slice(4)}`)).toBe(true);
    expect(messageId(run, 'welcome', 1)).not.toBe(id);
    expect(messageId(run, 'nudge', 0)).not.toBe(id);
    expect(legacyMessageId(run, 'welcome', 0)).toMatch(/^msg_[0-9a-f]{32}$/);
  });
});
