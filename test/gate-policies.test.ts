// Gate policies: workspace settings (parse, defaults, errors), frequency caps and quiet hours.

import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { DateTime } from 'luxon';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { calendarWindow, checkCaps, historyWindow, type SentRecord } from '../src/core/gate/caps.js';
import { quietUntil, quietWindowFor } from '../src/core/gate/quiet.js';
import {
  DEFAULT_SETTINGS,
  parseSettings,
  parseSettingsText,
  settingsSchema,
  type CapRule,
  type GateSettings,
} from '../src/core/gate/settings.js';
import type { Category } from '../src/core/reach.js';
import { nextLocalTime } from '../src/core/time.js';
import type { Channel } from '../src/core/types.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

function ok(input: unknown): GateSettings {
  const r = parseSettings(input);
  if (!r.ok) throw new Error(`expected valid settings: ${JSON.stringify(r.errors)}`);
  return r.settings;
}

function errorsOf(input: unknown): { path: string; message: string }[] {
  const r = parseSettings(input);
  if (r.ok) throw new Error('expected errors');
  return r.errors;
}

/** A cap rule with the parser's defaults. */
function cap(rule: Record<string, unknown>): CapRule {
  return ok({ caps: [{ id: 'r', limit: 1, window: { calendar: 'day' }, ...rule }] }).caps[0]!;
}

function rec(at: string | Date | number, channel: Channel = 'email', category: Category = 'promotional', tags: string[] = []): SentRecord {
  return { at: new Date(at), channel, category, tags };
}

const promo = { channel: 'email' as Channel, category: 'promotional' as Category, tags: [] as string[] };

// ---------------------------------------------------------------------------------------------------------
// Settings

describe('settings: defaults', () => {
  it('an empty document gives the documented defaults', () => {
    const s = ok({});
    expect(s).toEqual(DEFAULT_SETTINGS);
    expect(s.timezone).toBe('UTC');
    for (const c of ['email', 'sms', 'whatsapp', 'push', 'in_app'] as const) {
      expect(s.channels[c].enabled).toBe(true);
      expect(s.channels[c].provider).toBe('sandbox');
    }
    expect(s.channels.email).toEqual({ enabled: true, provider: 'sandbox', cost: 0.0008, capabilities: ['rich_media', 'buttons', 'long_text'] });
    expect(s.channels.sms.cost).toBe(0.0079);
    expect(s.channels.whatsapp).toMatchObject({ cost: 0.005, capabilities: ['rich_media', 'buttons'] });
    expect(s.channels.push).toMatchObject({ cost: 0, capabilities: ['buttons'] });
    expect(s.message_types).toEqual({
      alert: { prefer: ['sms', 'push'], needs: [] },
      receipt: { prefer: ['email'], needs: [] },
      promotion: { prefer: ['whatsapp', 'email'], needs: ['rich_media'] },
    });
    expect(s.scoring).toEqual({ type_rule: 3, preference: 2, engagement: 4, cost: 1, capability: 1, prior_strength: 20 });
    expect(s.caps).toEqual([]);
    expect(s.quiet_hours).toEqual({
      window: { start: '21:00', end: '08:00' },
      channels: { sms: { start: '21:00', end: '08:00' }, in_app: null },
      action: 'defer',
      bypass: ['transactional'],
    });
    expect(s.suppression).toEqual([]);
  });

  it('DEFAULT_SETTINGS is frozen; parsed settings are fresh and share nothing', () => {
    expect(Object.isFrozen(DEFAULT_SETTINGS)).toBe(true);
    expect(Object.isFrozen(DEFAULT_SETTINGS.channels.email.capabilities)).toBe(true);
    const a = ok({});
    const b = ok({});
    a.channels.email.capabilities.push('buttons');
    a.message_types['x'] = { prefer: [], needs: [] };
    a.quiet_hours.bypass.push('promotional');
    expect(b).toEqual(DEFAULT_SETTINGS);
    const input = { suppression: [{ id: 's', reason: 'r', when: { trait: 'vip', op: 'eq', value: true } }] };
    const parsed = ok(input);
    expect(parsed.suppression[0]!.when).toEqual(input.suppression[0]!.when);
    expect(parsed.suppression[0]!.when).not.toBe(input.suppression[0]!.when);
  });

  it('the schema renders as JSON Schema (OpenAPI docs)', () => {
    const input = z.toJSONSchema(settingsSchema, { io: 'input' }) as { properties: Record<string, unknown> };
    expect(Object.keys(input.properties)).toEqual(['timezone', 'channels', 'message_types', 'scoring', 'caps', 'quiet_hours', 'suppression']);
    expect(() => z.toJSONSchema(settingsSchema, { io: 'output' })).not.toThrow();
  });
});

describe('settings: partial documents merge with the defaults', () => {
  it('channels merge per channel and per field', () => {
    const s = ok({ channels: { sms: { enabled: false }, email: { provider: 'ses', cost: 0.001 } } });
    expect(s.channels.sms).toEqual({ enabled: false, provider: 'sandbox', cost: 0.0079, capabilities: [] });
    expect(s.channels.email).toEqual({ enabled: true, provider: 'ses', cost: 0.001, capabilities: ['rich_media', 'buttons', 'long_text'] });
    expect(s.channels.whatsapp).toEqual(DEFAULT_SETTINGS.channels.whatsapp);
    expect(s.caps).toEqual([]);
    expect(s.quiet_hours).toEqual(DEFAULT_SETTINGS.quiet_hours);
  });

  it('scoring and quiet_hours merge per field; quiet_hours.channels, message_types replace when given', () => {
    const s = ok({
      scoring: { cost: 0, prior_strength: 5 },
      quiet_hours: { window: null, channels: { in_app: null } },
      message_types: { digest: { prefer: ['email'] } },
    });
    expect(s.scoring).toEqual({ type_rule: 3, preference: 2, engagement: 4, cost: 0, capability: 1, prior_strength: 5 });
    expect(s.quiet_hours).toEqual({ window: null, channels: { in_app: null }, action: 'defer', bypass: ['transactional'] });
    expect(s.message_types).toEqual({ digest: { prefer: ['email'], needs: [] } });
    expect(ok({ quiet_hours: { action: 'drop' } }).quiet_hours).toEqual({ ...DEFAULT_SETTINGS.quiet_hours, action: 'drop' });
  });

  it('cap defaults: promotional + operational, all channels, no tags, suppress', () => {
    const s = ok({
      caps: [
        { id: 'promo-per-day', limit: 3, window: { calendar: 'day' } },
        { id: 'weekly', limit: 10, window: { rolling: 'P7D' }, categories: ['transactional'], channels: ['sms'], tags: ['news'], on_exceed: 'defer' },
        { id: 'none', limit: 0, window: { calendar: 'week' } },
      ],
    });
    expect(s.caps[0]).toEqual({
      id: 'promo-per-day',
      limit: 3,
      window: { calendar: 'day' },
      categories: ['promotional', 'operational'],
      channels: ['email', 'sms', 'whatsapp', 'push', 'in_app'],
      tags: [],
      on_exceed: 'suppress',
    });
    expect(s.caps[1]).toEqual({
      id: 'weekly',
      limit: 10,
      window: { rolling: 'P7D' },
      categories: ['transactional'],
      channels: ['sms'],
      tags: ['news'],
      on_exceed: 'defer',
    });
    expect(s.caps[2]!.limit).toBe(0);
  });

  it('suppression rules default to promotional and operational', () => {
    const s = ok({ suppression: [{ id: 'vip', reason: 'VIPs get no promos', when: { trait: 'vip', op: 'eq', value: true } }] });
    expect(s.suppression[0]).toEqual({
      id: 'vip',
      reason: 'VIPs get no promos',
      when: { trait: 'vip', op: 'eq', value: true },
      categories: ['promotional', 'operational'],
    });
  });
});

describe('settings: errors carry their path', () => {
  const cases: [string, unknown, string, RegExp][] = [
    ['not an object', [], '', /expected a settings document/],
    ['null document', null, '', /expected a settings document/],
    ['unknown top-level field', { extra: 1 }, 'extra', /unknown field "extra"/],
    ['bad time zone', { timezone: 'Mars/Olympus' }, 'timezone', /IANA time zone/],
    ['unknown channel', { channels: { fax: {} } }, 'channels.fax', /unknown field "fax"/],
    ['unknown channel field', { channels: { sms: { speed: 1 } } }, 'channels.sms.speed', /unknown field "speed"/],
    ['enabled not a boolean', { channels: { sms: { enabled: 'yes' } } }, 'channels.sms.enabled', /true or false/],
    ['negative cost', { channels: { sms: { cost: -1 } } }, 'channels.sms.cost', /≥ 0/],
    ['empty provider', { channels: { sms: { provider: '' } } }, 'channels.sms.provider', /provider/],
    ['unknown capability', { channels: { push: { capabilities: ['video'] } } }, 'channels.push.capabilities[0]', /capability/],
    ['repeated capability', { channels: { push: { capabilities: ['buttons', 'buttons'] } } }, 'channels.push.capabilities[1]', /listed twice/],
    ['bad message type name', { message_types: { 'a b': {} } }, 'message_types.a b', /message type name/],
    ['message type prefers unknown channel', { message_types: { t: { prefer: ['fax'] } } }, 'message_types.t.prefer[0]', /channel/],
    ['message type unknown field', { message_types: { t: { avoid: [] } } }, 'message_types.t.avoid', /unknown field/],
    ['negative weight', { scoring: { engagement: -2 } }, 'scoring.engagement', /≥ 0/],
    ['weight not a number', { scoring: { cost: 'high' } }, 'scoring.cost', /≥ 0/],
    ['unknown weight', { scoring: { luck: 1 } }, 'scoring.luck', /unknown field/],
    ['caps not a list', { caps: {} }, 'caps', /expected a list/],
    ['cap without id', { caps: [{ limit: 1, window: { calendar: 'day' } }] }, 'caps[0].id', /required/],
    ['suppression without condition', { suppression: [{ id: 's', reason: 'r' }] }, 'suppression[0].when', /condition/],
    ['cap bad id', { caps: [{ id: 'has space', limit: 1, window: { calendar: 'day' } }] }, 'caps[0].id', /id/],
    ['cap fractional limit', { caps: [{ id: 'a', limit: 1.5, window: { calendar: 'day' } }] }, 'caps[0].limit', /whole number ≥ 0/],
    ['cap negative limit', { caps: [{ id: 'a', limit: -1, window: { calendar: 'day' } }] }, 'caps[0].limit', /whole number ≥ 0/],
    ['cap missing limit', { caps: [{ id: 'a', window: { calendar: 'day' } }] }, 'caps[0].limit', /required/],
    ['cap missing window', { caps: [{ id: 'a', limit: 1 }] }, 'caps[0].window', /required/],
    ['cap empty window', { caps: [{ id: 'a', limit: 1, window: {} }] }, 'caps[0].window', /calendar.*rolling/],
    ['cap window as a string', { caps: [{ id: 'a', limit: 1, window: 'P1D' }] }, 'caps[0].window', /calendar.*rolling/],
    ['cap window both', { caps: [{ id: 'a', limit: 1, window: { calendar: 'day', rolling: 'P1D' } }] }, 'caps[0].window', /not both/],
    ['cap calendar month', { caps: [{ id: 'a', limit: 1, window: { calendar: 'month' } }] }, 'caps[0].window.calendar', /day or week/],
    ['cap rolling invalid', { caps: [{ id: 'a', limit: 1, window: { rolling: 'seven days' } }] }, 'caps[0].window.rolling', /ISO 8601 duration/],
    ['cap rolling months', { caps: [{ id: 'a', limit: 1, window: { rolling: 'P1M' } }] }, 'caps[0].window.rolling', /fixed length/],
    ['cap rolling years', { caps: [{ id: 'a', limit: 1, window: { rolling: 'P1Y' } }] }, 'caps[0].window.rolling', /fixed length/],
    ['cap rolling zero', { caps: [{ id: 'a', limit: 1, window: { rolling: 'P0D' } }] }, 'caps[0].window.rolling', /ISO 8601 duration/],
    ['cap window extra key', { caps: [{ id: 'a', limit: 1, window: { rolling: 'P1D', x: 1 } }] }, 'caps[0].window.x', /unknown field/],
    ['cap unknown category', { caps: [{ id: 'a', limit: 1, window: { calendar: 'day' }, categories: ['marketing'] }] }, 'caps[0].categories[0]', /category/],
    ['cap empty categories', { caps: [{ id: 'a', limit: 1, window: { calendar: 'day' }, categories: [] }] }, 'caps[0].categories', /at least one category/],
    ['cap empty channels', { caps: [{ id: 'a', limit: 1, window: { calendar: 'day' }, channels: [] }] }, 'caps[0].channels', /at least one channel/],
    ['cap repeated channel', { caps: [{ id: 'a', limit: 1, window: { calendar: 'day' }, channels: ['sms', 'sms'] }] }, 'caps[0].channels[1]', /listed twice/],
    ['cap empty tag', { caps: [{ id: 'a', limit: 1, window: { calendar: 'day' }, tags: [''] }] }, 'caps[0].tags[0]', /tag/],
    ['cap bad on_exceed', { caps: [{ id: 'a', limit: 1, window: { calendar: 'day' }, on_exceed: 'drop' }] }, 'caps[0].on_exceed', /suppress or defer/],
    ['cap unknown field', { caps: [{ id: 'a', limit: 1, window: { calendar: 'day' }, per: 'day' }] }, 'caps[0].per', /unknown field "per"/],
    [
      'duplicate cap ids',
      { caps: [{ id: 'a', limit: 1, window: { calendar: 'day' } }, { id: 'a', limit: 2, window: { calendar: 'week' } }] },
      'caps[1].id',
      /duplicate id "a" \(also caps\[0\]\)/,
    ],
    ['quiet start = end', { quiet_hours: { window: { start: '21:00', end: '21:00' } } }, 'quiet_hours.window', /start and end must differ/],
    ['quiet bad time', { quiet_hours: { window: { start: '9pm', end: '08:00' } } }, 'quiet_hours.window.start', /local time/],
    ['quiet 24:00', { quiet_hours: { window: { start: '21:00', end: '24:00' } } }, 'quiet_hours.window.end', /local time/],
    ['quiet channel start = end', { quiet_hours: { channels: { sms: { start: '08:00', end: '08:00' } } } }, 'quiet_hours.channels.sms', /differ/],
    ['quiet unknown channel', { quiet_hours: { channels: { fax: null } } }, 'quiet_hours.channels.fax', /unknown field/],
    ['quiet bad action', { quiet_hours: { action: 'suppress' } }, 'quiet_hours.action', /defer or drop/],
    ['quiet bad bypass', { quiet_hours: { bypass: ['urgent'] } }, 'quiet_hours.bypass[0]', /category/],
    ['suppression bad condition', { suppression: [{ id: 's', reason: 'r', when: { trait: 'x', op: 'eq' } }] }, 'suppression[0].when.value', /needs a value/],
    ['suppression no reason', { suppression: [{ id: 's', when: { trait: 'x', op: 'exists' } }] }, 'suppression[0].reason', /required/],
    [
      'duplicate suppression ids',
      { suppression: [{ id: 's', reason: 'r', when: { trait: 'x', op: 'exists' } }, { id: 's', reason: 'r', when: { trait: 'y', op: 'exists' } }] },
      'suppression[1].id',
      /duplicate id/,
    ],
  ];
  it.each(cases)('%s', (_name, input, path, message) => {
    const errors = errorsOf(input);
    const hit = errors.find((e) => e.path === path);
    expect(hit, JSON.stringify(errors)).toBeDefined();
    expect(hit!.message).toMatch(message);
  });

  it('collects every error of a document, not just the first', () => {
    const errors = errorsOf({
      timezone: 'Nowhere/Land',
      caps: [
        { id: 'a', limit: -1, window: { rolling: 'P0D' } },
        { id: 'a', limit: 1, window: { calendar: 'day' } },
      ],
      quiet_hours: { window: { start: '08:00', end: '08:00' } },
    });
    expect(errors.map((e) => e.path).sort()).toEqual(
      ['caps[0].limit', 'caps[0].window.rolling', 'caps[1].id', 'quiet_hours.window', 'timezone'].sort(),
    );
  });
});

describe('settings: text', () => {
  it('parses the YAML example of docs/gate.md', () => {
    const doc = readFileSync(new URL('../docs/gate.md', import.meta.url), 'utf8');
    const yaml = /```yaml\n([\s\S]*?)```/.exec(doc)![1]!;
    const r = parseSettingsText(yaml);
    expect(r.ok, JSON.stringify(r.ok ? null : r.errors)).toBe(true);
    if (!r.ok) return;
    expect(r.settings.caps.map((c) => c.id)).toEqual(['promo-per-day', 'sms-per-day', 'weekly']);
    expect(r.settings.caps[1]).toMatchObject({ channels: ['sms'], categories: ['promotional', 'operational'], on_exceed: 'suppress' });
    expect(r.settings.caps[2]!.window).toEqual({ rolling: 'P7D' });
    expect(r.settings.quiet_hours.channels).toEqual({ sms: { start: '21:00', end: '08:00' }, in_app: null });
    expect(r.settings.message_types['receipt']).toEqual({ prefer: ['email'], needs: [] });
    expect(r.settings.channels.email.provider).toBe('sandbox');
    expect(r.settings.suppression[0]).toMatchObject({ id: 'open-support-ticket', categories: ['promotional'] });
  });

  it('parses JSON text', () => {
    const r = parseSettingsText(JSON.stringify({ timezone: 'Europe/Paris', caps: [{ id: 'x', limit: 2, window: { rolling: 'PT12H' } }] }));
    expect(r.ok && r.settings.timezone).toBe('Europe/Paris');
    expect(r.ok && r.settings.caps[0]!.window).toEqual({ rolling: 'PT12H' });
  });

  it('reports YAML syntax errors with line and column, and duplicate keys', () => {
    const bad = parseSettingsText('caps: [\n');
    expect(bad.ok).toBe(false);
    if (!bad.ok) expect(bad.errors[0]!.message).toMatch(/^\d+:\d+: .*invalid YAML/);
    const dup = parseSettingsText('timezone: UTC\ntimezone: Europe/Paris\n');
    expect(dup.ok).toBe(false);
  });

  it('reports shape errors from YAML with their paths', () => {
    const r = parseSettingsText('caps:\n  - id: weekly\n    limit: 10\n    window: { rolling: 7 days }\n');
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.errors).toEqual([{ path: 'caps[0].window.rolling', message: expect.stringMatching(/ISO 8601/) }]);
  });

  it('refuses an empty document', () => {
    expect(parseSettingsText('').ok).toBe(false);
  });
});

// ---------------------------------------------------------------------------------------------------------
// Caps

describe('caps: calendar windows in the customer time zone', () => {
  const perDay = cap({ id: 'per-day', limit: 2, window: { calendar: 'day' } });
  // 2024-06-15T06:30Z is 23:30 on June 14 in Los Angeles (PDT, UTC−7).
  const now = new Date('2024-06-15T06:30:00Z');
  const history = [rec('2024-06-14T08:00:00Z'), rec('2024-06-15T01:00:00Z')]; // 01:00 and 18:00 on June 14, LA

  it('Los Angeles counts the local day, UTC the UTC day', () => {
    const la = checkCaps([perDay], promo, history, now, 'America/Los_Angeles');
    expect(la.allowed).toBe(false);
    expect(la.checks[0]).toMatchObject({ count: 2, allowed: false });
    expect(la.checks[0]!.windowStart.toISOString()).toBe('2024-06-14T07:00:00.000Z');
    expect(la.checks[0]!.reopensAt!.toISOString()).toBe('2024-06-15T07:00:00.000Z'); // local midnight
    expect(la.blocking?.rule.id).toBe('per-day');

    const utc = checkCaps([perDay], promo, history, now, 'UTC');
    expect(utc.allowed).toBe(true);
    expect(utc.checks[0]).toMatchObject({ count: 1, allowed: true, reopensAt: null });
    expect(utc.checks[0]!.windowStart.toISOString()).toBe('2024-06-15T00:00:00.000Z');
    expect(utc.blocking).toBeNull();
  });

  it('a record at exactly local midnight belongs to the new day', () => {
    const r = checkCaps([cap({ limit: 1 })], promo, [rec('2024-06-15T07:00:00Z')], new Date('2024-06-15T07:00:00Z'), 'America/Los_Angeles');
    expect(r.checks[0]!.count).toBe(1);
    const before = checkCaps([cap({ limit: 1 })], promo, [rec('2024-06-15T07:00:00Z')], new Date('2024-06-15T06:59:59.999Z'), 'America/Los_Angeles');
    expect(before.checks[0]!.count).toBe(0);
  });

  it('Pacific/Kiritimati (UTC+14)', () => {
    // 2024-06-15T09:00Z is 23:00 on June 15 local; the local day began at 2024-06-14T10:00Z.
    const n = new Date('2024-06-15T09:00:00Z');
    const r = checkCaps([cap({ limit: 1 })], promo, [rec('2024-06-14T09:59:59Z')], n, 'Pacific/Kiritimati');
    expect(r.checks[0]).toMatchObject({ count: 0, allowed: true });
    const r2 = checkCaps([cap({ limit: 1 })], promo, [rec('2024-06-14T10:00:00Z')], n, 'Pacific/Kiritimati');
    expect(r2.checks[0]).toMatchObject({ count: 1, allowed: false });
    expect(r2.checks[0]!.windowStart.toISOString()).toBe('2024-06-14T10:00:00.000Z');
    expect(r2.checks[0]!.reopensAt!.toISOString()).toBe('2024-06-15T10:00:00.000Z');
    // The same history in UTC is yesterday's.
    expect(checkCaps([cap({ limit: 1 })], promo, [rec('2024-06-14T10:00:00Z')], n, 'UTC').allowed).toBe(true);
  });

  it('Pacific/Pago_Pago (UTC−11)', () => {
    // 2024-06-15T10:30Z is 23:30 on June 14 local; the local day is [2024-06-14T11:00Z, 2024-06-15T11:00Z).
    const n = new Date('2024-06-15T10:30:00Z');
    const history = [rec('2024-06-14T10:59:59Z'), rec('2024-06-14T11:00:00Z'), rec('2024-06-15T10:00:00Z')];
    const r = checkCaps([cap({ limit: 2 })], promo, history, n, 'Pacific/Pago_Pago');
    expect(r.checks[0]).toMatchObject({ count: 2, allowed: false });
    expect(r.checks[0]!.windowStart.toISOString()).toBe('2024-06-14T11:00:00.000Z');
    expect(r.checks[0]!.reopensAt!.toISOString()).toBe('2024-06-15T11:00:00.000Z');
    // In UTC, June 15 holds only the last one.
    expect(checkCaps([cap({ limit: 2 })], promo, history, n, 'UTC').checks[0]!.count).toBe(1);
  });

  it('DST days are 23 and 25 hours long', () => {
    const spring = calendarWindow('day', new Date('2024-03-10T12:00:00Z'), 'America/Los_Angeles');
    expect(spring.start.toISOString()).toBe('2024-03-10T08:00:00.000Z'); // 00:00 PST
    expect(spring.end.toISOString()).toBe('2024-03-11T07:00:00.000Z'); // 00:00 PDT
    expect(spring.end.getTime() - spring.start.getTime()).toBe(23 * HOUR);

    const fall = calendarWindow('day', new Date('2024-11-03T12:00:00Z'), 'America/Los_Angeles');
    expect(fall.start.toISOString()).toBe('2024-11-03T07:00:00.000Z'); // 00:00 PDT
    expect(fall.end.toISOString()).toBe('2024-11-04T08:00:00.000Z'); // 00:00 PST
    expect(fall.end.getTime() - fall.start.getTime()).toBe(25 * HOUR);

    // 23:30 PST on Nov 3 (= 2024-11-04T07:30Z) is still Nov 3 locally: it counts, and the cap reopens at 08:00Z.
    const r = checkCaps([cap({ limit: 1 })], promo, [rec('2024-11-04T07:30:00Z')], new Date('2024-11-04T07:45:00Z'), 'America/Los_Angeles');
    expect(r.checks[0]).toMatchObject({ count: 1, allowed: false });
    expect(r.checks[0]!.reopensAt!.toISOString()).toBe('2024-11-04T08:00:00.000Z');
  });

  it('a day whose midnight does not exist starts when the clock jumps (America/Sao_Paulo 2018-11-04)', () => {
    const w = calendarWindow('day', new Date('2018-11-04T15:00:00Z'), 'America/Sao_Paulo');
    expect(w.start.toISOString()).toBe('2018-11-04T03:00:00.000Z'); // 01:00 −02, the first instant of the day
    expect(w.end.toISOString()).toBe('2018-11-05T02:00:00.000Z');
  });

  it('calendar weeks are ISO weeks from Monday local midnight', () => {
    // Sunday 2024-06-16 22:00 in Paris (CEST, UTC+2).
    const n = new Date('2024-06-16T20:00:00Z');
    const w = calendarWindow('week', n, 'Europe/Paris');
    expect(w.start.toISOString()).toBe('2024-06-09T22:00:00.000Z'); // Monday June 10, 00:00 local
    expect(w.end.toISOString()).toBe('2024-06-16T22:00:00.000Z');
    const weekly = cap({ limit: 2, window: { calendar: 'week' } });
    const history = [rec('2024-06-09T21:59:59Z'), rec('2024-06-10T08:00:00Z'), rec('2024-06-16T19:00:00Z')];
    const r = checkCaps([weekly], promo, history, n, 'Europe/Paris');
    expect(r.checks[0]).toMatchObject({ count: 2, allowed: false });
    expect(r.checks[0]!.reopensAt!.toISOString()).toBe('2024-06-16T22:00:00.000Z');
  });
});

describe('caps: rolling windows', () => {
  const now = new Date('2024-06-15T12:00:00Z');
  const ago = (ms: number) => new Date(now.getTime() - ms);

  it('P7D: reopens when the oldest records that fill the cap leave the window', () => {
    const history = [rec(ago(6 * DAY)), rec(ago(5 * DAY)), rec(ago(1 * DAY))];
    const two = checkCaps([cap({ id: 'weekly', limit: 2, window: { rolling: 'P7D' } })], promo, history, now, 'UTC');
    expect(two.checks[0]).toMatchObject({ count: 3, allowed: false });
    // Count 3, limit 2: the 2nd oldest (5 days ago) must leave → in 2 days.
    expect(two.checks[0]!.reopensAt!.toISOString()).toBe(new Date(now.getTime() + 2 * DAY).toISOString());
    expect(two.checks[0]!.windowStart.toISOString()).toBe(ago(7 * DAY).toISOString());

    const three = checkCaps([cap({ id: 'weekly', limit: 3, window: { rolling: 'P7D' } })], promo, history, now, 'UTC');
    expect(three.checks[0]!.reopensAt!.toISOString()).toBe(new Date(now.getTime() + DAY).toISOString());

    const four = checkCaps([cap({ id: 'weekly', limit: 4, window: { rolling: 'P7D' } })], promo, history, now, 'UTC');
    expect(four.checks[0]).toMatchObject({ count: 3, allowed: true, reopensAt: null });
  });

  it('the window is (now − duration, now]: a record exactly one duration old is out', () => {
    const rule = cap({ limit: 1, window: { rolling: 'P7D' } });
    expect(checkCaps([rule], promo, [rec(ago(7 * DAY))], now, 'UTC').allowed).toBe(true);
    expect(checkCaps([rule], promo, [rec(ago(7 * DAY - 1))], now, 'UTC').allowed).toBe(false);
  });

  it('rolling days are 24 hours whatever the zone (DST does not stretch them)', () => {
    const rule = cap({ limit: 1, window: { rolling: 'P1D' } });
    const n = new Date('2024-03-10T20:00:00Z'); // a 23-hour day in Los Angeles
    const r = checkCaps([rule], promo, [rec(n.getTime() - 23.5 * HOUR)], n, 'America/Los_Angeles');
    expect(r.allowed).toBe(false);
    expect(r.checks[0]!.reopensAt!.getTime()).toBe(n.getTime() + 0.5 * HOUR);
  });

  it('history in any order; records timed after now count', () => {
    const rule = cap({ limit: 2, window: { rolling: 'PT1H' } });
    const history = [rec(now.getTime() + 1000), rec(ago(50 * 60_000)), rec(ago(2 * HOUR)), rec(ago(10 * 60_000))];
    const r = checkCaps([rule], promo, history, now, 'UTC');
    expect(r.checks[0]!.count).toBe(3);
    // The 2nd earliest leaver (10 min ago) leaves at now + 50 min.
    expect(r.checks[0]!.reopensAt!.getTime()).toBe(now.getTime() + 50 * 60_000);
  });
});

describe('caps: which rules apply and what they count', () => {
  const now = new Date('2024-06-15T12:00:00Z');

  it('tags: a tagged rule applies only to messages with one of its tags, and counts only those', () => {
    const rule = cap({ id: 'digest', limit: 1, tags: ['digest', 'weekly'] });
    const history = [rec('2024-06-15T01:00:00Z', 'email', 'promotional', ['news'])];
    expect(checkCaps([rule], promo, history, now, 'UTC').checks).toEqual([]);
    const tagged = { ...promo, tags: ['weekly'] };
    expect(checkCaps([rule], tagged, history, now, 'UTC')).toMatchObject({ allowed: true, checks: [{ count: 0 }] });
    const history2 = [...history, rec('2024-06-15T02:00:00Z', 'sms', 'operational', ['digest'])];
    expect(checkCaps([rule], tagged, history2, now, 'UTC')).toMatchObject({ allowed: false, checks: [{ count: 1 }] });
  });

  it('channel filters', () => {
    const smsOnly = cap({ id: 'sms-per-day', limit: 1, channels: ['sms'] });
    const history = [rec('2024-06-15T01:00:00Z', 'email'), rec('2024-06-15T02:00:00Z', 'push')];
    expect(checkCaps([smsOnly], promo, history, now, 'UTC').checks).toEqual([]);
    const sms = { ...promo, channel: 'sms' as Channel };
    expect(checkCaps([smsOnly], sms, history, now, 'UTC')).toMatchObject({ allowed: true, checks: [{ count: 0 }] });
    expect(checkCaps([smsOnly], sms, [...history, rec('2024-06-15T03:00:00Z', 'sms')], now, 'UTC').allowed).toBe(false);
  });

  it('transactional messages are exempt unless the rule lists transactional; other categories are not counted', () => {
    const all = cap({ limit: 1 });
    const tx = { ...promo, category: 'transactional' as Category };
    const history = [rec('2024-06-15T01:00:00Z', 'email', 'promotional')];
    expect(checkCaps([all], tx, history, now, 'UTC')).toEqual({ allowed: true, blocking: null, checks: [] });
    const txRule = cap({ id: 'tx', limit: 1, categories: ['transactional'] });
    expect(checkCaps([txRule], tx, history, now, 'UTC')).toMatchObject({ allowed: true, checks: [{ count: 0 }] });
    expect(checkCaps([txRule], tx, [...history, rec('2024-06-15T02:00:00Z', 'email', 'transactional')], now, 'UTC').allowed).toBe(false);
    // Transactional records don't count against the promotional rule.
    expect(checkCaps([all], promo, [rec('2024-06-15T02:00:00Z', 'email', 'transactional')], now, 'UTC').allowed).toBe(true);
    // Operational is capped by default.
    expect(checkCaps([all], { ...promo, category: 'operational' }, history, now, 'UTC').allowed).toBe(false);
  });

  it('override_caps: allowed, with the checks still reported', () => {
    const rule = cap({ limit: 1 });
    const r = checkCaps([rule], { ...promo, overrideCaps: true }, [rec('2024-06-15T01:00:00Z')], now, 'UTC');
    expect(r.allowed).toBe(true);
    expect(r.blocking).toBeNull();
    expect(r.checks).toHaveLength(1);
    expect(r.checks[0]).toMatchObject({ count: 1, allowed: false });
  });

  it('blocking: the violated rule that reopens latest, first on ties; limit 0 never reopens', () => {
    const day = cap({ id: 'day', limit: 1 });
    const week = cap({ id: 'week', limit: 1, window: { rolling: 'P7D' }, on_exceed: 'defer' });
    const dayToo = cap({ id: 'day-too', limit: 1 });
    const roomy = cap({ id: 'roomy', limit: 10, window: { rolling: 'P30D' } });
    const history = [rec('2024-06-15T01:00:00Z')];
    const r = checkCaps([day, roomy, week, dayToo], promo, history, now, 'UTC');
    expect(r.allowed).toBe(false);
    expect(r.checks.map((c) => [c.rule.id, c.allowed])).toEqual([
      ['day', false],
      ['roomy', true],
      ['week', false],
      ['day-too', false],
    ]);
    expect(r.blocking!.rule.id).toBe('week');
    expect(r.blocking!.reopensAt!.toISOString()).toBe('2024-06-22T01:00:00.000Z');
    expect(checkCaps([day, dayToo], promo, history, now, 'UTC').blocking!.rule.id).toBe('day');

    const never = cap({ id: 'never', limit: 0 });
    const z0 = checkCaps([week, never], promo, [], now, 'UTC');
    expect(z0.allowed).toBe(false);
    expect(z0.blocking).toMatchObject({ count: 0, reopensAt: null });
    expect(z0.blocking!.rule.id).toBe('never');
  });

  it('no rules: allowed', () => {
    expect(checkCaps([], promo, [rec(now)], now, 'UTC')).toEqual({ allowed: true, blocking: null, checks: [] });
  });

  it('an unknown zone is a RangeError', () => {
    expect(() => checkCaps([cap({})], promo, [], now, 'Nowhere/Land')).toThrow(RangeError);
  });

  it('historyWindow: how far back the history must reach', () => {
    expect(historyWindow([], now)).toEqual(now);
    expect(historyWindow([cap({})], now)).toEqual(new Date(now.getTime() - 2 * DAY));
    expect(historyWindow([cap({}), cap({ window: { calendar: 'week' } })], now)).toEqual(new Date(now.getTime() - 8 * DAY));
    expect(historyWindow([cap({ window: { rolling: 'P30D' } }), cap({ window: { calendar: 'week' } })], now)).toEqual(
      new Date(now.getTime() - 30 * DAY),
    );
    expect(historyWindow([cap({ window: { rolling: 'PT6H' } })], now)).toEqual(new Date(now.getTime() - 6 * HOUR));
  });
});

// ---------------------------------------------------------------------------------------------------------
// Quiet hours

const quiet = (window: GateSettings['quiet_hours']['window'], channels: GateSettings['quiet_hours']['channels'] = {}) => ({
  window,
  channels,
  action: 'defer' as const,
  bypass: ['transactional' as Category],
});
const iso = (d: Date | null) => (d ? d.toISOString() : null);

describe('quiet hours', () => {
  const night = quiet({ start: '21:00', end: '08:00' });

  it('a window crossing midnight, in UTC', () => {
    expect(iso(quietUntil(night, 'email', new Date('2024-06-15T22:00:00Z'), 'UTC'))).toBe('2024-06-16T08:00:00.000Z');
    expect(iso(quietUntil(night, 'email', new Date('2024-06-15T03:00:00Z'), 'UTC'))).toBe('2024-06-15T08:00:00.000Z');
    expect(iso(quietUntil(night, 'email', new Date('2024-06-15T00:00:00Z'), 'UTC'))).toBe('2024-06-15T08:00:00.000Z');
    expect(quietUntil(night, 'email', new Date('2024-06-15T12:00:00Z'), 'UTC')).toBeNull();
  });

  it('boundaries: quiet at exactly start, not at exactly end', () => {
    expect(iso(quietUntil(night, 'email', new Date('2024-06-15T21:00:00Z'), 'UTC'))).toBe('2024-06-16T08:00:00.000Z');
    expect(quietUntil(night, 'email', new Date('2024-06-15T20:59:59.999Z'), 'UTC')).toBeNull();
    expect(quietUntil(night, 'email', new Date('2024-06-15T08:00:00Z'), 'UTC')).toBeNull();
    expect(iso(quietUntil(night, 'email', new Date('2024-06-15T07:59:59.999Z'), 'UTC'))).toBe('2024-06-15T08:00:00.000Z');
  });

  it('a window within one day', () => {
    const lunch = quiet({ start: '13:00', end: '14:00' });
    expect(iso(quietUntil(lunch, 'sms', new Date('2024-06-15T13:30:00Z'), 'UTC'))).toBe('2024-06-15T14:00:00.000Z');
    expect(iso(quietUntil(lunch, 'sms', new Date('2024-06-15T13:00:00Z'), 'UTC'))).toBe('2024-06-15T14:00:00.000Z');
    expect(quietUntil(lunch, 'sms', new Date('2024-06-15T14:00:00Z'), 'UTC')).toBeNull();
    expect(quietUntil(lunch, 'sms', new Date('2024-06-15T12:59:00Z'), 'UTC')).toBeNull();
    expect(quietUntil(lunch, 'sms', new Date('2024-06-15T23:00:00Z'), 'UTC')).toBeNull();
  });

  it('customers far from UTC', () => {
    // 2024-06-15T08:00Z is 22:00 on June 15 in Kiritimati (UTC+14): quiet until 08:00 June 16 local = 18:00Z.
    expect(iso(quietUntil(night, 'email', new Date('2024-06-15T08:00:00Z'), 'Pacific/Kiritimati'))).toBe('2024-06-15T18:00:00.000Z');
    // …while it's 08:00 in UTC: not quiet there.
    expect(quietUntil(night, 'email', new Date('2024-06-15T08:00:00Z'), 'UTC')).toBeNull();
    // 2024-06-15T10:00Z is 23:00 on June 14 in Pago Pago (UTC−11): until 08:00 June 15 local = 19:00Z.
    expect(iso(quietUntil(night, 'email', new Date('2024-06-15T10:00:00Z'), 'Pacific/Pago_Pago'))).toBe('2024-06-15T19:00:00.000Z');
    // Los Angeles at 05:00Z = 22:00 PDT.
    expect(iso(quietUntil(night, 'email', new Date('2024-06-15T05:00:00Z'), 'America/Los_Angeles'))).toBe('2024-06-15T15:00:00.000Z');
    // India, a half-hour offset: 2024-06-15T16:00Z = 21:30 IST → 08:00 IST = 02:30Z.
    expect(iso(quietUntil(night, 'email', new Date('2024-06-15T16:00:00Z'), 'Asia/Kolkata'))).toBe('2024-06-16T02:30:00.000Z');
  });

  it('per-channel windows replace the general one; null turns quiet hours off', () => {
    const s = quiet({ start: '21:00', end: '08:00' }, { sms: { start: '20:00', end: '09:00' }, in_app: null });
    const n = new Date('2024-06-15T20:30:00Z');
    expect(quietWindowFor(s, 'sms')).toEqual({ start: '20:00', end: '09:00' });
    expect(iso(quietUntil(s, 'sms', n, 'UTC'))).toBe('2024-06-16T09:00:00.000Z');
    expect(quietUntil(s, 'email', n, 'UTC')).toBeNull();
    expect(quietUntil(s, 'in_app', new Date('2024-06-15T23:00:00Z'), 'UTC')).toBeNull();
    expect(iso(quietUntil(s, 'email', new Date('2024-06-15T23:00:00Z'), 'UTC'))).toBe('2024-06-16T08:00:00.000Z');
    expect(iso(quietUntil(s, 'sms', new Date('2024-06-16T08:30:00Z'), 'UTC'))).toBe('2024-06-16T09:00:00.000Z');

    const noGeneral = quiet(null, { sms: { start: '21:00', end: '08:00' } });
    expect(quietUntil(noGeneral, 'email', new Date('2024-06-15T23:00:00Z'), 'UTC')).toBeNull();
    expect(iso(quietUntil(noGeneral, 'sms', new Date('2024-06-15T23:00:00Z'), 'UTC'))).toBe('2024-06-16T08:00:00.000Z');
  });

  it('the default settings: sms and every other channel quiet 21:00–08:00, except in-app', () => {
    const n = new Date('2024-06-15T04:00:00Z'); // 21:00 PDT
    for (const c of ['email', 'sms', 'whatsapp', 'push'] as const) {
      expect(iso(quietUntil(DEFAULT_SETTINGS.quiet_hours, c, n, 'America/Los_Angeles'))).toBe('2024-06-15T15:00:00.000Z');
    }
    expect(quietUntil(DEFAULT_SETTINGS.quiet_hours, 'in_app', n, 'America/Los_Angeles')).toBeNull();
  });

  it('DST: the end follows local time across the change', () => {
    // Night of the spring change in Los Angeles: 23:00 PST on March 9 → 08:00 PDT on March 10 (8 h later, not 9).
    const n = new Date('2024-03-10T07:00:00Z');
    expect(iso(quietUntil(night, 'email', n, 'America/Los_Angeles'))).toBe('2024-03-10T15:00:00.000Z');
    // Night of the fall change: 23:00 PDT on Nov 2 → 08:00 PST on Nov 3 (10 h later).
    expect(iso(quietUntil(night, 'email', new Date('2024-11-03T06:00:00Z'), 'America/Los_Angeles'))).toBe('2024-11-03T16:00:00.000Z');
  });

  it('DST: an end inside the spring-forward gap ends the quiet period when the clock jumps', () => {
    // New York, 2024-03-10: 02:00 EST jumps to 03:00 EDT (07:00Z). Quiet 00:00–02:30; 01:30 EST = 06:30Z.
    const s = quiet({ start: '00:00', end: '02:30' });
    expect(iso(quietUntil(s, 'email', new Date('2024-03-10T06:30:00Z'), 'America/New_York'))).toBe('2024-03-10T07:00:00.000Z');
    expect(quietUntil(s, 'email', new Date('2024-03-10T07:00:00Z'), 'America/New_York')).toBeNull();
  });

  it('DST: a repeated hour is read as local time (quiet again in the second 01:xx)', () => {
    // New York, 2024-11-03: 01:59 EDT is followed by 01:00 EST (06:00Z). Quiet 21:00–01:30.
    const s = quiet({ start: '21:00', end: '01:30' });
    expect(iso(quietUntil(s, 'email', new Date('2024-11-03T04:00:00Z'), 'America/New_York'))).toBe('2024-11-03T05:30:00.000Z');
    expect(quietUntil(s, 'email', new Date('2024-11-03T05:45:00Z'), 'America/New_York')).toBeNull();
    expect(iso(quietUntil(s, 'email', new Date('2024-11-03T06:10:00Z'), 'America/New_York'))).toBe('2024-11-03T06:30:00.000Z');
  });

  it('an unknown zone is a RangeError', () => {
    expect(() => quietUntil(night, 'email', new Date(), 'Nowhere/Land')).toThrow(RangeError);
  });
});

// ---------------------------------------------------------------------------------------------------------
// Properties

const ZONES = [
  'UTC',
  'America/Los_Angeles',
  'America/New_York',
  'America/Sao_Paulo',
  'Europe/Paris',
  'Europe/London',
  'Asia/Kolkata',
  'Australia/Lord_Howe',
  'Pacific/Kiritimati',
  'Pacific/Pago_Pago',
  'Pacific/Apia',
  'Pacific/Chatham',
] as const;

const instant = fc
  .integer({ min: Date.UTC(2000, 0, 1), max: Date.UTC(2040, 0, 1) })
  .map((ms) => new Date(ms));
const hhmm = fc
  .tuple(fc.integer({ min: 0, max: 23 }), fc.integer({ min: 0, max: 59 }))
  .map(([h, m]) => `${String(h).padStart(2, '0')}:${String(m).padStart(2, '0')}`);

describe('properties', () => {
  it('checkCaps with limit L never allows when L matching records are in the window', () => {
    const windows = [{ calendar: 'day' }, { calendar: 'week' }, { rolling: 'PT6H' }, { rolling: 'P1D' }, { rolling: 'P7D' }, { rolling: 'P30D' }, { rolling: 'PT90S' }];
    fc.assert(
      fc.property(
        instant,
        fc.constantFrom(...ZONES),
        fc.constantFrom(...windows),
        fc.integer({ min: 1, max: 5 }),
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 5, maxLength: 5 }),
        fc.array(fc.tuple(fc.integer({ min: -40 * DAY, max: 0 }), fc.constantFrom<Channel>('email', 'sms'), fc.constantFrom<Category>('promotional', 'transactional')), { maxLength: 6 }),
        (now, zone, window, limit, fractions, noise) => {
          const rule = cap({ id: 'p', limit, window, channels: ['email'] });
          let lo: number;
          if ('calendar' in window) lo = calendarWindow(window.calendar as 'day' | 'week', now, zone).start.getTime();
          else lo = checkCaps([rule], promo, [], now, zone).checks[0]!.windowStart.getTime() + 1;
          const hi = now.getTime();
          const inWindow = fractions.slice(0, limit).map((f) => rec(Math.min(hi, lo + Math.floor(f * (hi - lo)))));
          const history = [...noise.map(([off, ch, cat]) => rec(now.getTime() + off, ch, cat)), ...inWindow];
          const r = checkCaps([rule], promo, history, now, zone);
          expect(r.allowed).toBe(false);
          expect(r.checks[0]!.count).toBeGreaterThanOrEqual(limit);
          const reopens = r.checks[0]!.reopensAt!;
          expect(reopens.getTime()).toBeGreaterThan(now.getTime());
          // At reopensAt the same history fits (no records were timed after now); a moment before, it doesn't.
          expect(checkCaps([rule], promo, history, reopens, zone).allowed).toBe(true);
          expect(checkCaps([rule], promo, history, new Date(reopens.getTime() - 1), zone).allowed).toBe(false);
          // historyWindow reaches back far enough.
          const since = historyWindow([rule], now).getTime();
          const recent = history.filter((h) => h.at.getTime() >= since);
          expect(checkCaps([rule], promo, recent, now, zone).checks[0]!.count).toBe(r.checks[0]!.count);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('quietUntil: after now, within a day, at the local end time (except DST gaps), and not quiet then', () => {
    fc.assert(
      fc.property(
        instant,
        fc.constantFrom(...ZONES),
        hhmm,
        hhmm,
        (now, zone, start, end) => {
          fc.pre(start !== end);
          const s = quiet({ start, end });
          const until = quietUntil(s, 'email', now, zone);
          const local = DateTime.fromJSDate(now, { zone });
          const m = local.hour * 60 + local.minute + (local.second * 1000 + local.millisecond) / 60_000;
          const [sm, em] = [start, end].map((t) => Number(t.slice(0, 2)) * 60 + Number(t.slice(3)));
          const isQuiet = sm! < em! ? m >= sm! && m < em! : m >= sm! || m < em!;
          expect(until !== null).toBe(isQuiet);
          if (!until) return;
          expect(until.getTime()).toBeGreaterThan(now.getTime());
          expect(quietUntil(s, 'email', until, zone)).toBeNull();
          const mid = new Date(now.getTime() + Math.floor((until.getTime() - now.getTime()) / 2));
          expect(quietUntil(s, 'email', mid, zone)).not.toBeNull();
          const next = nextLocalTime(now, end, zone);
          const atEnd = DateTime.fromJSDate(until, { zone }).toFormat('HH:mm') === end;
          if (until.getTime() === next.getTime() && atEnd) {
            // Local time elapsed is under 24 h; real time differs by the DST change in between.
            const shift = (local.offset - DateTime.fromJSDate(until, { zone }).offset) * 60_000;
            expect(until.getTime() - now.getTime()).toBeLessThanOrEqual(DAY + Math.max(0, shift));
          } else {
            // A DST gap swallowed the end: the period ends when the clock jumps, before the gap-shifted time.
            expect(DateTime.fromJSDate(until, { zone }).offset).not.toBe(local.offset);
          }
        },
      ),
      { numRuns: 500 },
    );
  });

  it('quietUntil near DST changes (dense around the transitions)', () => {
    const transitions = [
      ['America/New_York', '2024-03-10T07:00:00Z'],
      ['America/New_York', '2024-11-03T06:00:00Z'],
      ['Europe/Paris', '2024-03-31T01:00:00Z'],
      ['Europe/Paris', '2024-10-27T01:00:00Z'],
      ['Australia/Lord_Howe', '2024-04-06T15:00:00Z'],
      ['Pacific/Apia', '2011-12-30T10:00:00Z'],
    ] as const;
    fc.assert(
      fc.property(
        fc.constantFrom(...transitions),
        fc.integer({ min: -30 * HOUR, max: 30 * HOUR }),
        hhmm,
        hhmm,
        ([zone, at], offset, start, end) => {
          fc.pre(start !== end);
          const now = new Date(Date.parse(at) + offset);
          const s = quiet({ start, end });
          const until = quietUntil(s, 'email', now, zone);
          if (!until) return;
          expect(until.getTime()).toBeGreaterThan(now.getTime());
          expect(until.getTime() - now.getTime()).toBeLessThanOrEqual(2 * DAY + 2 * HOUR);
          expect(quietUntil(s, 'email', until, zone)).toBeNull();
        },
      ),
      { numRuns: 500 },
    );
  });
});
