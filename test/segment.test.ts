import fc from 'fast-check';
import { z } from 'zod';
import { describe, expect, it, vi } from 'vitest';
import { EVENT_TYPES, type EventType, type IncomingEvent } from '../src/core/types.js';
import {
  MAX_BATCH_EVENTS,
  MAX_EVENT_BYTES,
  parseBatch,
  parseCall,
  segmentSchemas,
  type FieldError,
  type ParseResult,
} from '../src/ingest/segment.js';

const RECEIVED = new Date('2026-01-08T12:00:00.000Z');

function ids(): () => string {
  let n = 0;
  return () => `gen-${++n}`;
}

function ok<T>(result: ParseResult<T>): T {
  if (!result.ok) throw new Error(`expected ok, got ${JSON.stringify(result.errors)}`);
  return result.value;
}

function errors<T>(result: ParseResult<T>): FieldError[] {
  if (result.ok) throw new Error('expected errors, got ok');
  return result.errors;
}

const call = (type: EventType, body: unknown) => parseCall(type, body, RECEIVED, ids());

describe('parseCall: valid payloads', () => {
  const cases: { name: string; type: EventType; body: Record<string, unknown>; expected: Partial<IncomingEvent> }[] = [
    {
      name: 'identify with traits',
      type: 'identify',
      body: { userId: 'u1', traits: { email: 'a@example.com' } },
      expected: { userId: 'u1', anonymousId: null, traits: { email: 'a@example.com' }, properties: {}, event: null },
    },
    {
      name: 'identify with only anonymousId',
      type: 'identify',
      body: { anonymousId: 'anon-1' },
      expected: { userId: null, anonymousId: 'anon-1', traits: {} },
    },
    {
      name: 'track with properties and context',
      type: 'track',
      body: { userId: 'u1', event: 'Order Completed', properties: { total: 10 }, context: { ip: '1.2.3.4' } },
      expected: { event: 'Order Completed', properties: { total: 10 }, context: { ip: '1.2.3.4' }, traits: {} },
    },
    {
      name: 'track keeps context.traits in context',
      type: 'track',
      body: { userId: 'u1', event: 'E', context: { traits: { plan: 'pro' } } },
      expected: { traits: {}, context: { traits: { plan: 'pro' } } },
    },
    {
      name: 'numeric ids become strings',
      type: 'track',
      body: { userId: 42, anonymousId: 0, event: 'E' },
      expected: { userId: '42', anonymousId: '0' },
    },
    {
      name: 'null and empty ids count as missing',
      type: 'track',
      body: { userId: null, anonymousId: 'a', event: 'E' },
      expected: { userId: null, anonymousId: 'a' },
    },
    {
      name: 'page name becomes event',
      type: 'page',
      body: { anonymousId: 'a', name: 'Pricing', category: 'Docs', properties: { url: 'https://x' } },
      expected: { event: 'Pricing', properties: { url: 'https://x' } },
    },
    {
      name: 'page without name',
      type: 'page',
      body: { anonymousId: 'a' },
      expected: { event: null, properties: {} },
    },
    {
      name: 'screen name becomes event',
      type: 'screen',
      body: { userId: 'u', name: 'Home' },
      expected: { event: 'Home' },
    },
    {
      name: 'group with traits',
      type: 'group',
      body: { userId: 'u', groupId: 'g1', traits: { name: 'Acme' } },
      expected: { groupId: 'g1', traits: { name: 'Acme' }, previousId: null },
    },
    {
      name: 'group with numeric groupId',
      type: 'group',
      body: { anonymousId: 'a', groupId: 7 },
      expected: { groupId: '7' },
    },
    {
      name: 'alias',
      type: 'alias',
      body: { userId: 'new', previousId: 'old' },
      expected: { userId: 'new', previousId: 'old', anonymousId: null, groupId: null, event: null },
    },
    {
      name: 'alias with numbers and anonymousId',
      type: 'alias',
      body: { userId: 1, previousId: 2, anonymousId: 'a' },
      expected: { userId: '1', previousId: '2', anonymousId: 'a' },
    },
    {
      name: 'matching body type is fine',
      type: 'track',
      body: { type: 'track', userId: 'u', event: 'E' },
      expected: { type: 'track' },
    },
    {
      name: 'properties on identify stay in raw only',
      type: 'identify',
      body: { userId: 'u', properties: { a: 1 } },
      expected: { properties: {}, raw: { userId: 'u', properties: { a: 1 } } },
    },
  ];

  it.each(cases)('$name', ({ type, body, expected }) => {
    const event = ok(call(type, body));
    expect(event).toMatchObject({ type, ...expected });
    expect(event.receivedAt).toBe(RECEIVED.toISOString());
  });

  it('fills defaults for absent fields', () => {
    expect(ok(call('identify', { userId: 'u' }))).toEqual({
      messageId: 'gen-1',
      type: 'identify',
      userId: 'u',
      anonymousId: null,
      previousId: null,
      groupId: null,
      event: null,
      properties: {},
      traits: {},
      context: {},
      timestamp: RECEIVED.toISOString(),
      originalTimestamp: null,
      sentAt: null,
      receivedAt: RECEIVED.toISOString(),
      raw: { userId: 'u' },
    });
  });

  it('keeps unknown fields in raw and drops writeKey', () => {
    const body = { userId: 'u', event: 'E', writeKey: 'secret', _metadata: { bundled: [] }, version: 2, channel: 'server' };
    const { raw } = ok(call('track', body));
    expect(raw).toEqual({ userId: 'u', event: 'E', _metadata: { bundled: [] }, version: 2, channel: 'server' });
    expect(body.writeKey).toBe('secret'); // input not mutated
  });
});

describe('parseCall: invalid payloads', () => {
  const cases: { name: string; type: EventType; body: unknown; expected: { path: string; message: RegExp }[] }[] = [
    { name: 'null body', type: 'track', body: null, expected: [{ path: '', message: /expected a JSON object/ }] },
    { name: 'array body', type: 'track', body: [], expected: [{ path: '', message: /expected a JSON object/ }] },
    { name: 'string body', type: 'track', body: 'x', expected: [{ path: '', message: /expected a JSON object/ }] },
    {
      name: 'no ids',
      type: 'identify',
      body: { traits: {} },
      expected: [{ path: 'userId', message: /userId or anonymousId is required/ }],
    },
    {
      name: 'empty ids',
      type: 'page',
      body: { userId: '', anonymousId: '' },
      expected: [{ path: 'userId', message: /userId or anonymousId is required/ }],
    },
    {
      name: 'boolean userId',
      type: 'identify',
      body: { userId: true },
      expected: [{ path: 'userId', message: /userId: expected a string or number, got boolean true/ }],
    },
    {
      name: 'object anonymousId',
      type: 'identify',
      body: { anonymousId: { a: 1 } },
      expected: [{ path: 'anonymousId', message: /anonymousId: expected a string or number/ }],
    },
    {
      name: 'userId too long',
      type: 'identify',
      body: { userId: 'x'.repeat(1025) },
      expected: [{ path: 'userId', message: /at most 1024 characters, got 1025/ }],
    },
    {
      name: 'track without event',
      type: 'track',
      body: { userId: 'u' },
      expected: [{ path: 'event', message: /event is required for track/ }],
    },
    {
      name: 'track with empty event',
      type: 'track',
      body: { userId: 'u', event: '' },
      expected: [{ path: 'event', message: /event is required for track/ }],
    },
    {
      name: 'track with numeric event',
      type: 'track',
      body: { userId: 'u', event: 5 },
      expected: [{ path: 'event', message: /event: expected a string, got number 5/ }],
    },
    {
      name: 'track event too long',
      type: 'track',
      body: { userId: 'u', event: 'e'.repeat(1025) },
      expected: [{ path: 'event', message: /at most 1024 characters/ }],
    },
    {
      name: 'page name not a string',
      type: 'page',
      body: { userId: 'u', name: ['x'] },
      expected: [{ path: 'name', message: /name: expected a string, got an array/ }],
    },
    {
      name: 'group without groupId',
      type: 'group',
      body: { userId: 'u' },
      expected: [{ path: 'groupId', message: /groupId is required for group/ }],
    },
    {
      name: 'group needs a user too',
      type: 'group',
      body: { groupId: 'g' },
      expected: [{ path: 'userId', message: /userId or anonymousId is required/ }],
    },
    {
      name: 'alias without anything',
      type: 'alias',
      body: { anonymousId: 'a' },
      expected: [
        { path: 'userId', message: /userId is required for alias/ },
        { path: 'previousId', message: /previousId is required for alias/ },
      ],
    },
    {
      name: 'alias with bad previousId',
      type: 'alias',
      body: { userId: 'u', previousId: false },
      expected: [{ path: 'previousId', message: /previousId: expected a string or number/ }],
    },
    {
      name: 'properties is an array',
      type: 'track',
      body: { userId: 'u', event: 'E', properties: [1] },
      expected: [{ path: 'properties', message: /^properties: expected an object, got an array$/ }],
    },
    {
      name: 'traits is null',
      type: 'identify',
      body: { userId: 'u', traits: null },
      expected: [{ path: 'traits', message: /traits: expected an object, got null/ }],
    },
    {
      name: 'context is a string',
      type: 'identify',
      body: { userId: 'u', context: 'x' },
      expected: [{ path: 'context', message: /context: expected an object/ }],
    },
    {
      name: 'integrations is a number',
      type: 'identify',
      body: { userId: 'u', integrations: 1 },
      expected: [{ path: 'integrations', message: /integrations: expected an object/ }],
    },
    {
      name: 'messageId not a string',
      type: 'identify',
      body: { userId: 'u', messageId: 12 },
      expected: [{ path: 'messageId', message: /messageId: expected a string/ }],
    },
    {
      name: 'messageId too long',
      type: 'identify',
      body: { userId: 'u', messageId: 'm'.repeat(257) },
      expected: [{ path: 'messageId', message: /at most 256 characters/ }],
    },
    {
      name: 'mismatching body type',
      type: 'identify',
      body: { type: 'track', userId: 'u' },
      expected: [{ path: 'type', message: /expected "identify" .*got "track"/ }],
    },
    {
      name: 'bad timestamp',
      type: 'identify',
      body: { userId: 'u', timestamp: 'yesterday' },
      expected: [{ path: 'timestamp', message: /timestamp: expected an ISO 8601 date-time such as 2026-01-08T10:00:00Z/ }],
    },
    {
      name: 'numeric sentAt',
      type: 'identify',
      body: { userId: 'u', sentAt: 1767866400000 },
      expected: [{ path: 'sentAt', message: /sentAt: expected an ISO 8601 date-time/ }],
    },
    {
      name: 'several problems at once',
      type: 'track',
      body: { userId: [], properties: 'x', originalTimestamp: '2026-13-01' },
      expected: [
        { path: 'userId', message: /expected a string or number/ },
        { path: 'event', message: /required/ },
        { path: 'properties', message: /expected an object/ },
        { path: 'originalTimestamp', message: /ISO 8601/ },
      ],
    },
  ];

  it.each(cases)('$name', ({ type, body, expected }) => {
    const errs = errors(call(type, body));
    expect(errs).toHaveLength(expected.length);
    expected.forEach((e, i) => {
      expect(errs[i].path).toBe(e.path);
      expect(errs[i].message).toMatch(e.message);
    });
  });
});

describe('timestamps', () => {
  const at = (timestamp: unknown) => call('identify', { userId: 'u', timestamp });

  it.each([
    ['2026-01-08T10:00:00Z', '2026-01-08T10:00:00.000Z'],
    ['2026-01-08T10:00:00.123456Z', '2026-01-08T10:00:00.123Z'],
    ['2026-01-08T10:00:00.5+01:00', '2026-01-08T09:00:00.500Z'],
    ['2026-01-08T10:00:00-0230', '2026-01-08T12:30:00.000Z'],
    ['2026-01-08T10:00+01', '2026-01-08T09:00:00.000Z'],
    ['2026-01-08 10:00:00Z', '2026-01-08T10:00:00.000Z'],
    ['2026-01-08', '2026-01-08T00:00:00.000Z'],
    ['2026-01-08T10:00:00', '2026-01-08T10:00:00.000Z'], // no zone means UTC, not the server's zone
    ['2024-02-29T00:00:00Z', '2024-02-29T00:00:00.000Z'],
  ])('accepts %s', (input, expected) => {
    expect(ok(at(input)).originalTimestamp).toBe(expected);
  });

  it.each([
    'yesterday',
    '',
    '2026-1-8',
    '2026-02-30T00:00:00Z',
    '2025-02-29',
    '2026-01-08T25:00:00Z',
    '2026-01-08T10:00:60Z',
    '2026-01-08T10:00:00+25:00',
    '2026-01-08Z',
    'Thu, 08 Jan 2026 10:00:00 GMT',
    '1767866400000',
  ])('rejects %j', (input) => {
    expect(errors(at(input))).toEqual([{ path: 'timestamp', message: expect.stringContaining('ISO 8601') }]);
  });

  it('treats null as absent', () => {
    expect(ok(at(null)).timestamp).toBe(RECEIVED.toISOString());
  });
});

describe('clock-skew correction', () => {
  it('applies timestamp = receivedAt − (sentAt − originalTimestamp)', () => {
    // The client clock is 1 hour fast; the event happened 5 s before it was sent.
    const event = ok(
      call('track', { userId: 'u', event: 'E', timestamp: '2026-01-08T13:00:00Z', sentAt: '2026-01-08T13:00:05Z' }),
    );
    expect(event.timestamp).toBe('2026-01-08T11:59:55.000Z');
    expect(event.originalTimestamp).toBe('2026-01-08T13:00:00.000Z');
    expect(event.sentAt).toBe('2026-01-08T13:00:05.000Z');
  });

  it('prefers originalTimestamp over timestamp', () => {
    const event = ok(
      call('track', {
        userId: 'u',
        event: 'E',
        timestamp: '2020-01-01T00:00:00Z',
        originalTimestamp: '2026-01-08T13:00:00Z',
        sentAt: '2026-01-08T13:00:01Z',
      }),
    );
    expect(event.originalTimestamp).toBe('2026-01-08T13:00:00.000Z');
    expect(event.timestamp).toBe('2026-01-08T11:59:59.000Z');
  });

  it('uses the client time as-is without sentAt', () => {
    const event = ok(call('track', { userId: 'u', event: 'E', timestamp: '2025-06-01T00:00:00Z' }));
    expect(event.timestamp).toBe('2025-06-01T00:00:00.000Z');
    expect(event.sentAt).toBeNull();
  });

  it('uses receivedAt without a client time', () => {
    const event = ok(call('track', { userId: 'u', event: 'E', sentAt: '2025-06-01T00:00:00Z' }));
    expect(event.timestamp).toBe(RECEIVED.toISOString());
    expect(event.originalTimestamp).toBeNull();
    expect(event.sentAt).toBe('2025-06-01T00:00:00.000Z');
  });

  it('property: timestamp − receivedAt == originalTimestamp − sentAt', () => {
    const date = fc.date({ min: new Date('1990-01-01'), max: new Date('2100-01-01'), noInvalidDate: true });
    fc.assert(
      fc.property(date, date, date, fc.boolean(), (original, sentAt, receivedAt, viaBatch) => {
        const item = { type: 'track', userId: 'u', event: 'E', originalTimestamp: original.toISOString() };
        const event = viaBatch
          ? ok(parseBatch({ batch: [item], sentAt: sentAt.toISOString() }, receivedAt, ids()))[0]
          : ok(parseCall('track', { ...item, sentAt: sentAt.toISOString() }, receivedAt, ids()));
        expect(Date.parse(event.timestamp) - receivedAt.getTime()).toBe(original.getTime() - sentAt.getTime());
      }),
    );
  });
});

describe('messageId', () => {
  it('keeps a given messageId', () => {
    expect(ok(call('identify', { userId: 'u', messageId: 'm-1' })).messageId).toBe('m-1');
  });

  it.each([undefined, null, ''])('generates one when it is %j', (messageId) => {
    const newId = vi.fn(() => 'fresh');
    const event = ok(parseCall('identify', { userId: 'u', messageId }, RECEIVED, newId));
    expect(event.messageId).toBe('fresh');
    expect(newId).toHaveBeenCalledTimes(1);
  });

  it('does not spend ids on rejected calls', () => {
    const newId = vi.fn(() => 'fresh');
    parseCall('identify', {}, RECEIVED, newId);
    parseBatch({ batch: [{ type: 'identify', userId: 'u' }, { type: 'identify' }] }, RECEIVED, newId);
    expect(newId).not.toHaveBeenCalled();
  });

  it('generates a distinct id per batch item', () => {
    const events = ok(
      parseBatch(
        { batch: [{ type: 'identify', userId: 'a' }, { type: 'identify', userId: 'b', messageId: 'own' }, { type: 'identify', userId: 'c' }] },
        RECEIVED,
        ids(),
      ),
    );
    expect(events.map((e) => e.messageId)).toEqual(['gen-1', 'own', 'gen-2']);
  });
});

describe('size limit', () => {
  /** A track call whose JSON is exactly `bytes` long, padded with `char` (1 or more UTF-8 bytes). */
  function trackOfSize(bytes: number, char = 'x'): Record<string, unknown> {
    const body = { userId: 'u', event: 'E', properties: { pad: '' } };
    const overhead = Buffer.byteLength(JSON.stringify(body));
    const charBytes = Buffer.byteLength(char);
    expect((bytes - overhead) % charBytes).toBe(0);
    body.properties.pad = char.repeat((bytes - overhead) / charBytes);
    expect(Buffer.byteLength(JSON.stringify(body))).toBe(bytes);
    return body;
  }

  it('accepts an event of exactly 32 KB', () => {
    expect(call('track', trackOfSize(MAX_EVENT_BYTES)).ok).toBe(true);
  });

  it('rejects one byte more', () => {
    expect(errors(call('track', trackOfSize(MAX_EVENT_BYTES + 1)))).toEqual([
      { path: '', message: 'event is 32769 bytes; the limit is 32768 bytes' },
    ]);
  });

  it('counts bytes, not characters', () => {
    const body = trackOfSize(MAX_EVENT_BYTES + 2, 'é'); // é is 2 bytes
    expect(JSON.stringify(body).length).toBeLessThan(MAX_EVENT_BYTES);
    expect(errors(call('track', body))[0].message).toMatch(/event is 32770 bytes/);
  });

  it('applies to each batch item', () => {
    const big = { type: 'track', ...trackOfSize(MAX_EVENT_BYTES + 100) };
    expect(errors(parseBatch({ batch: [{ type: 'identify', userId: 'u' }, big] }, RECEIVED, ids()))).toEqual([
      { path: 'batch[1]', message: expect.stringMatching(/^event is \d+ bytes; the limit is 32768 bytes$/) },
    ]);
  });
});

describe('parseBatch', () => {
  it('parses every call type and applies batch-level context and sentAt', () => {
    const events = ok(
      parseBatch(
        {
          writeKey: 'secret',
          sentAt: '2026-01-08T13:00:10Z',
          context: { library: { name: 'analytics-node' }, ip: '1.1.1.1' },
          integrations: {},
          batch: [
            { type: 'identify', userId: 'u', traits: { a: 1 }, timestamp: '2026-01-08T13:00:00Z' },
            { type: 'track', userId: 'u', event: 'E', context: { ip: '2.2.2.2' }, writeKey: 'x' },
            { type: 'page', anonymousId: 'a', name: 'Home' },
            { type: 'screen', anonymousId: 'a', name: 'Feed' },
            { type: 'group', userId: 'u', groupId: 'g' },
            {
              type: 'alias',
              userId: 'u',
              previousId: 'a',
              timestamp: '2026-01-08T13:00:00Z',
              sentAt: '2026-01-08T13:00:01Z',
            },
          ],
        },
        RECEIVED,
        ids(),
      ),
    );
    expect(events.map((e) => e.type)).toEqual(['identify', 'track', 'page', 'screen', 'group', 'alias']);
    expect(events[0].context).toEqual({ library: { name: 'analytics-node' }, ip: '1.1.1.1' });
    expect(events[1].context).toEqual({ library: { name: 'analytics-node' }, ip: '2.2.2.2' }); // event wins
    expect(events[1].raw).toEqual({ type: 'track', userId: 'u', event: 'E', context: { ip: '2.2.2.2' } });
    expect(events[0].sentAt).toBe('2026-01-08T13:00:10.000Z'); // inherited
    expect(events[0].timestamp).toBe('2026-01-08T11:59:50.000Z'); // 10 s before receivedAt
    expect(events[5].sentAt).toBe('2026-01-08T13:00:01.000Z'); // own sentAt wins
    expect(events[5].timestamp).toBe('2026-01-08T11:59:59.000Z');
    expect(events[2].timestamp).toBe(RECEIVED.toISOString()); // no client time
  });

  it('is atomic and lists every error by index', () => {
    const result = parseBatch(
      {
        batch: [
          { type: 'identify', userId: 'u' },
          { type: 'track', userId: 'u' },
          'not an object',
          { type: 'page', anonymousId: 'a', properties: [] },
          { userId: 'u' },
          { type: 'purchase', userId: 'u' },
          { type: 'alias', userId: 'u', previousId: 'p', timestamp: 'soon' },
        ],
      },
      RECEIVED,
      ids(),
    );
    expect(errors(result)).toEqual([
      { path: 'batch[1].event', message: expect.stringContaining('event is required for track') },
      { path: 'batch[2]', message: 'expected a JSON object' },
      { path: 'batch[3].properties', message: 'properties: expected an object, got an array' },
      {
        path: 'batch[4].type',
        message: 'expected one of identify, track, page, screen, group, alias, got nothing',
      },
      {
        path: 'batch[5].type',
        message: 'expected one of identify, track, page, screen, group, alias, got "purchase"',
      },
      { path: 'batch[6].timestamp', message: expect.stringContaining('ISO 8601') },
    ]);
  });

  it.each([
    ['a missing batch', {}],
    ['an empty batch', { batch: [] }],
    ['a non-array batch', { batch: { type: 'track' } }],
  ])('rejects %s', (_name, body) => {
    expect(errors(parseBatch(body, RECEIVED, ids()))).toEqual([
      { path: 'batch', message: expect.stringContaining('expected a non-empty array of calls') },
    ]);
  });

  it.each([null, [], 'batch', 3])('rejects a %j body', (body) => {
    expect(errors(parseBatch(body, RECEIVED, ids()))).toEqual([{ path: '', message: 'expected a JSON object' }]);
  });

  it('validates batch-level fields', () => {
    const result = parseBatch(
      { sentAt: 'later', context: [], integrations: 'all', batch: [{ type: 'identify', userId: 'u' }] },
      RECEIVED,
      ids(),
    );
    expect(errors(result).map((e) => e.path)).toEqual(['sentAt', 'context', 'integrations']);
  });

  it(`accepts ${MAX_BATCH_EVENTS} calls and rejects one more`, () => {
    const item = { type: 'track', userId: 'u', event: 'E' };
    const full = ok(parseBatch({ batch: Array(MAX_BATCH_EVENTS).fill(item) }, RECEIVED, ids()));
    expect(full).toHaveLength(MAX_BATCH_EVENTS);
    expect(new Set(full.map((e) => e.messageId)).size).toBe(MAX_BATCH_EVENTS);

    expect(errors(parseBatch({ batch: Array(MAX_BATCH_EVENTS + 1).fill(item) }, RECEIVED, ids()))).toEqual([
      { path: 'batch', message: 'batch has 2501 calls; the limit is 2500' },
    ]);
  });
});

// ---------------------------------------------------------------------------------------------
// Property tests

const eventType = fc.constantFrom(...EVENT_TYPES);
const isoDate = fc
  .date({ min: new Date('1970-01-01'), max: new Date('2100-01-01'), noInvalidDate: true })
  .map((d) => d.toISOString());
const id = fc.oneof(fc.string({ minLength: 1, maxLength: 40 }), fc.integer());
const jsonObject = fc.dictionary(fc.string({ maxLength: 10 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 5 });
/** Mostly-valid payloads with occasional junk in any field, to probe both paths. */
const sometimesJunk = <T>(good: fc.Arbitrary<T>) => fc.oneof({ weight: 4, arbitrary: good }, { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 1 }) });
const fuzzyPayload = fc.record(
  {
    type: sometimesJunk(eventType),
    userId: sometimesJunk(id),
    anonymousId: sometimesJunk(id),
    previousId: sometimesJunk(id),
    groupId: sometimesJunk(id),
    event: sometimesJunk(fc.string({ minLength: 1 })),
    name: sometimesJunk(fc.string()),
    messageId: sometimesJunk(fc.string()),
    properties: sometimesJunk(jsonObject),
    traits: sometimesJunk(jsonObject),
    context: sometimesJunk(jsonObject),
    integrations: sometimesJunk(jsonObject),
    timestamp: sometimesJunk(isoDate),
    originalTimestamp: sometimesJunk(isoDate),
    sentAt: sometimesJunk(isoDate),
  },
  { requiredKeys: [] },
);

describe('properties', () => {
  it('parseCall never throws on arbitrary JSON values', () => {
    fc.assert(
      fc.property(eventType, fc.jsonValue(), (type, body) => {
        call(type, body);
      }),
    );
  });

  it('parseCall and parseBatch never throw on arbitrary values', () => {
    fc.assert(
      fc.property(eventType, fc.anything(), (type, body) => {
        call(type, body);
        parseBatch(body, RECEIVED, ids());
        parseBatch({ batch: [body] }, RECEIVED, ids());
      }),
    );
  });

  it('parseCall never throws on mostly-valid payloads, and its errors have friendly paths', () => {
    fc.assert(
      fc.property(eventType, fuzzyPayload, (type, body) => {
        const result = call(type, body);
        if (!result.ok) for (const e of result.errors) expect(e.path).toMatch(/^[A-Za-z]*$/);
      }),
    );
  });

  it('valid track payloads round-trip userId, event and properties', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.string({ minLength: 1, maxLength: 1024 }), fc.integer()),
        fc.string({ minLength: 1, maxLength: 1024 }),
        jsonObject,
        (userId, event, properties) => {
          // Through JSON, as the HTTP layer would deliver it.
          const body = JSON.parse(JSON.stringify({ userId, event, properties }));
          const parsed = ok(call('track', body));
          expect(parsed.userId).toBe(String(userId));
          expect(parsed.event).toBe(event);
          expect(parsed.properties).toEqual(body.properties);
        },
      ),
    );
  });

  it('the zod schemas accept everything the parser accepts', () => {
    fc.assert(
      fc.property(eventType, fuzzyPayload, (type, body) => {
        const single = call(type, body);
        if (single.ok) expect(segmentSchemas[type].safeParse(body).success).toBe(true);
        const batchBody = { batch: [body] };
        if (parseBatch(batchBody, RECEIVED, ids()).ok) expect(segmentSchemas.batch.safeParse(batchBody).success).toBe(true);
      }),
      { numRuns: 500 },
    );
  });
});

describe('segmentSchemas', () => {
  it('describes required fields', () => {
    expect(segmentSchemas.track.safeParse({ userId: 'u' }).success).toBe(false);
    expect(segmentSchemas.alias.safeParse({ userId: 'u' }).success).toBe(false);
    expect(segmentSchemas.group.safeParse({ userId: 'u' }).success).toBe(false);
    expect(segmentSchemas.batch.safeParse({ batch: [] }).success).toBe(false);
    expect(segmentSchemas.batch.safeParse({ batch: [{ userId: 'u' }] }).success).toBe(false);
  });

  it('convert to JSON Schema for OpenAPI', () => {
    for (const schema of Object.values(segmentSchemas)) {
      expect(z.toJSONSchema(schema, { io: 'input' })).toMatchObject({ type: 'object', additionalProperties: {} });
    }
    expect(z.toJSONSchema(segmentSchemas.alias, { io: 'input' })).toMatchObject({
      required: ['userId', 'previousId'],
    });
  });

  it('passes unknown fields through', () => {
    const parsed = segmentSchemas.identify.safeParse({ userId: 'u', _metadata: { x: 1 } });
    expect(parsed.success && parsed.data).toEqual({ userId: 'u', _metadata: { x: 1 } });
  });
});
