// Validation and normalization of Segment HTTP Tracking API payloads
// (https://segment.com/docs/connections/sources/catalog/libraries/server/http-api/).
//
// Validation is hand-written rather than derived from the zod schemas so that every error
// carries a friendly path (`batch[3].properties`) and a message saying what is expected.
// The zod schemas at the bottom exist for OpenAPI documentation; they accept a superset of
// what the parser accepts (the "userId or anonymousId" rule and size limits are not expressible
// in JSON Schema), so routes must still call parseCall / parseBatch.

import { z, type ZodType } from 'zod';
import { fitsIndex, tooLong } from '../core/limits.js';
import { EVENT_TYPES, type EventType, type IncomingEvent } from '../core/types.js';
import { isoTime, parseIsoTime } from '../core/iso-time.js';

export interface FieldError {
  path: string;
  message: string;
}
export type ParseResult<T> = { ok: true; value: T } | { ok: false; errors: FieldError[] };

export const MAX_EVENT_BYTES = 32 * 1024;
export const MAX_BATCH_BYTES = 500 * 1024;
export const MAX_BATCH_EVENTS = 2500;

const MAX_ID_CHARS = 1024;
const MAX_EVENT_NAME_CHARS = 1024;
const MAX_MESSAGE_ID_CHARS = 256;
const DATE_EXAMPLE = '2026-01-08T10:00:00Z';

type JsonObject = Record<string, unknown>;

/** Batch-level values inherited by each item. */
interface Inherited {
  sentAt: Date | null;
  context: JsonObject;
}

// ---------------------------------------------------------------------------------------------
// Public entry points

/** Parse one call posted to /v1/{type}. `type` comes from the URL and wins over a `type` field in the body (a mismatching body type is an error naming `type`). */
export function parseCall(
  type: EventType,
  body: unknown,
  receivedAt: Date,
  newId: () => string,
): ParseResult<IncomingEvent> {
  const errors = new Errors('');
  if (!isJsonObject(body)) {
    errors.add('', 'expected a JSON object');
    return errors.result();
  }
  if (body.type !== undefined && body.type !== type) {
    errors.add('type', `expected "${type}" (the call type from the URL /v1/${type}), got ${describe(body.type)}`);
  }
  const event = parseEvent(type, body, { sentAt: null, context: {} }, receivedAt, errors);
  return errors.any() || !event ? errors.result() : { ok: true, value: event(newId) };
}

/** Parse a /v1/batch body: { batch: [...], sentAt?, context?, integrations?, writeKey? }. Each item needs a `type`. Atomic: if any item is bad, return ALL errors, each path prefixed with `batch[i].`. Batch-level `context` is shallow-merged under each event's own context (event wins); batch-level sentAt is used for an event without its own sentAt. */
export function parseBatch(body: unknown, receivedAt: Date, newId: () => string): ParseResult<IncomingEvent[]> {
  const errors = new Errors('');
  if (!isJsonObject(body)) {
    errors.add('', 'expected a JSON object');
    return errors.result();
  }
  const inherited: Inherited = {
    sentAt: readTimestamp(body, 'sentAt', errors),
    context: readObject(body, 'context', errors),
  };
  readObject(body, 'integrations', errors);

  const items = body.batch;
  if (!Array.isArray(items) || items.length === 0) {
    errors.add('batch', `expected a non-empty array of calls, got ${describe(items)}`);
    return errors.result();
  }
  if (items.length > MAX_BATCH_EVENTS) {
    // Don't validate thousands of items just to reject the request anyway.
    errors.add('batch', `batch has ${items.length} calls; the limit is ${MAX_BATCH_EVENTS}`);
    return errors.result();
  }

  const builders = items.map((item, i) => parseBatchItem(item, inherited, receivedAt, errors.nested(`batch[${i}]`)));
  if (errors.any()) return errors.result();
  // No errors means every builder exists; build only now so newId() is not spent on rejected batches.
  return { ok: true, value: builders.map((build) => build!(newId)) };
}

// ---------------------------------------------------------------------------------------------
// One call

type Builder = (newId: () => string) => IncomingEvent;

function parseBatchItem(item: unknown, inherited: Inherited, receivedAt: Date, errors: Errors): Builder | null {
  if (!isJsonObject(item)) {
    errors.add('', 'expected a JSON object');
    return null;
  }
  if (!isEventType(item.type)) {
    errors.add('type', `expected one of ${EVENT_TYPES.join(', ')}, got ${describe(item.type)}`);
    return null;
  }
  return parseEvent(item.type, item, inherited, receivedAt, errors);
}

/**
 * Validate one call and return a function that builds the normalized event, or null if the
 * call is invalid. Errors go to `errors`; all checks run so every problem is reported at once.
 */
function parseEvent(
  type: EventType,
  body: JsonObject,
  inherited: Inherited,
  receivedAt: Date,
  errors: Errors,
): Builder | null {
  const before = errors.count();
  checkSize(body, errors);

  const ids = readIdentity(type, body, errors);
  const event = readEventName(type, body, errors);

  const properties = readObject(body, 'properties', errors);
  const traits = readObject(body, 'traits', errors);
  const context = readObject(body, 'context', errors);
  readObject(body, 'integrations', errors);

  const messageId = readMessageId(body, errors);
  const times = readTimes(body, inherited.sentAt, receivedAt, errors);

  if (errors.count() > before) return null;

  const { writeKey: _writeKey, ...raw } = body;
  return (newId) => ({
    messageId: messageId ?? newId(),
    type,
    ...ids,
    event,
    // Only the fields the call type defines; anything else stays in `raw`.
    properties: type === 'track' || type === 'page' || type === 'screen' ? properties : {},
    traits: type === 'identify' || type === 'group' ? traits : {},
    context: { ...inherited.context, ...context },
    ...times,
    raw,
  });
}

type Identity = Pick<IncomingEvent, 'userId' | 'anonymousId' | 'previousId' | 'groupId'>;

function readIdentity(type: EventType, body: JsonObject, errors: Errors): Identity {
  const userId = readId(body, 'userId', errors);
  const anonymousId = readId(body, 'anonymousId', errors);
  let previousId: string | null = null;
  let groupId: string | null = null;

  if (type === 'alias') {
    previousId = readId(body, 'previousId', errors);
    requireId(body, 'userId', userId, 'userId is required for alias (the new id)', errors);
    requireId(body, 'previousId', previousId, 'previousId is required for alias (the id being replaced)', errors);
  } else if (userId === null && anonymousId === null && isBlank(body.userId) && isBlank(body.anonymousId)) {
    errors.add('userId', 'userId or anonymousId is required (a non-empty string or number)');
  }
  if (type === 'group') {
    groupId = readId(body, 'groupId', errors);
    requireId(body, 'groupId', groupId, 'groupId is required for group (a non-empty string or number)', errors);
  }
  return { userId, anonymousId, previousId, groupId };
}

/** track: `event` (required); page/screen: `name` (optional); other calls have no name. */
function readEventName(type: EventType, body: JsonObject, errors: Errors): string | null {
  if (type === 'track') {
    const event = readString(body, 'event', MAX_EVENT_NAME_CHARS, errors);
    if (event === null && isBlank(body.event)) errors.add('event', 'event is required for track (a non-empty string)');
    return event;
  }
  if (type === 'page' || type === 'screen') return readString(body, 'name', MAX_EVENT_NAME_CHARS, errors);
  return null;
}

function readMessageId(body: JsonObject, errors: Errors): string | null {
  return readString(body, 'messageId', MAX_MESSAGE_ID_CHARS, errors);
}

type Times = Pick<IncomingEvent, 'timestamp' | 'originalTimestamp' | 'sentAt' | 'receivedAt'>;

/**
 * Segment's clock-skew correction: the client's clock may be wrong, but the gap between when the
 * event happened and when it was sent is reliable, so that gap is applied to our own clock:
 * timestamp = receivedAt − (sentAt − originalTimestamp).
 */
function readTimes(body: JsonObject, batchSentAt: Date | null, receivedAt: Date, errors: Errors): Times {
  const timestamp = readTimestamp(body, 'timestamp', errors);
  const original = readTimestamp(body, 'originalTimestamp', errors) ?? timestamp;
  const sentAt = readTimestamp(body, 'sentAt', errors) ?? batchSentAt;

  const corrected =
    original && sentAt ? new Date(receivedAt.getTime() - (sentAt.getTime() - original.getTime())) : original ?? receivedAt;
  return {
    timestamp: isoTime(corrected.getTime()),
    originalTimestamp: original ? isoTime(original.getTime()) : null,
    sentAt: sentAt ? isoTime(sentAt.getTime()) : null,
    receivedAt: isoTime(receivedAt.getTime()),
  };
}

function checkSize(body: JsonObject, errors: Errors): void {
  let json: string;
  try {
    json = JSON.stringify(body);
  } catch {
    // Unreachable for bodies that came from JSON.parse, but callers may pass anything.
    errors.add('', 'expected a JSON-serializable object');
    return;
  }
  const bytes = Buffer.byteLength(json, 'utf8');
  if (bytes > MAX_EVENT_BYTES) errors.add('', `event is ${bytes} bytes; the limit is ${MAX_EVENT_BYTES} bytes`);
}

// ---------------------------------------------------------------------------------------------
// Field readers. Each returns a usable value (null / {} when absent) and records an error when
// the field is present but wrong. JSON null counts as absent for scalars, since some clients
// (e.g. analytics-python) send `"anonymousId": null`.

/** A string or finite number, converted to a string; "" and null count as absent. */
function readId(body: JsonObject, field: string, errors: Errors): string | null {
  const value = body[field];
  if (isBlank(value)) return null;
  const id = typeof value === 'number' && Number.isFinite(value) ? String(value) : value;
  if (typeof id !== 'string') {
    errors.add(field, `${field}: expected a string or number, got ${describe(value)}`);
    return null;
  }
  if (id.length > MAX_ID_CHARS) {
    errors.add(field, `${field}: must be at most ${MAX_ID_CHARS} characters, got ${id.length}`);
    return null;
  }
  if (!fitsIndex(id)) {
    errors.add(field, `${field}: ${tooLong(id)}`);
    return null;
  }
  return id;
}

/** Report a missing required id, unless readId already reported the field as malformed. */
function requireId(body: JsonObject, field: string, value: string | null, message: string, errors: Errors): void {
  if (value === null && isBlank(body[field])) errors.add(field, message);
}

/** An optional string; "" and null count as absent. */
function readString(body: JsonObject, field: string, maxChars: number, errors: Errors): string | null {
  const value = body[field];
  if (isBlank(value)) return null;
  if (typeof value !== 'string') {
    errors.add(field, `${field}: expected a string, got ${describe(value)}`);
    return null;
  }
  if (value.length > maxChars) {
    errors.add(field, `${field}: must be at most ${maxChars} characters, got ${value.length}`);
    return null;
  }
  if (!fitsIndex(value)) {
    errors.add(field, `${field}: ${tooLong(value)}`);
    return null;
  }
  return value;
}

/** An optional JSON object. Unlike scalars, null is rejected: these fields are never nullable in Segment's spec. */
function readObject(body: JsonObject, field: string, errors: Errors): JsonObject {
  const value = body[field];
  if (value === undefined) return {};
  if (!isJsonObject(value)) {
    errors.add(field, `${field}: expected an object, got ${describe(value)}`);
    return {};
  }
  return value;
}

function readTimestamp(body: JsonObject, field: string, errors: Errors): Date | null {
  const value = body[field];
  if (value === undefined || value === null) return null;
  const date = typeof value === 'string' ? parseIsoDate(value) : null;
  if (!date) errors.add(field, `${field}: expected an ISO 8601 date-time such as ${DATE_EXAMPLE}, got ${describe(value)}`);
  return date;
}

// Date, optional time (seconds and fraction optional), optional zone (only after a time).
const ISO_8601 =
  /^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?(Z|z|[+-]\d{2}(?::?\d{2})?)?)?$/;

/**
 * Parse a loose ISO 8601 date-time. The string is rebuilt in the one form `Date.parse` handles
 * identically everywhere; a missing zone means UTC (Date.parse would use the server's local zone).
 */
function parseIsoDate(text: string): Date | null {
  const m = ISO_8601.exec(text);
  if (!m) return null;
  const [, year, month, day, hour = '00', minute = '00', second = '00', fraction = '', zone = 'Z'] = m;
  if (!isCalendarDate(Number(year), Number(month), Number(day))) return null;
  const millis = fraction.slice(0, 3).padEnd(3, '0');
  const offset = zone.toUpperCase() === 'Z' ? 'Z' : normalizeOffset(zone);
  const time = parseIsoTime(`${year}-${month}-${day}T${hour}:${minute}:${second}.${millis}${offset}`);
  return Number.isFinite(time) ? new Date(time) : null;
}

/** "+01", "+0100", "+01:00" → "+01:00". */
function normalizeOffset(zone: string): string {
  const digits = zone.slice(1).replace(':', '');
  return `${zone[0]}${digits.slice(0, 2)}:${digits.slice(2) || '00'}`;
}

/** Date.parse rolls 2026-02-30 over to March 2; reject it instead. */
function isCalendarDate(year: number, month: number, day: number): boolean {
  if (month < 1 || month > 12 || day < 1) return false;
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  const daysInMonth = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
  return day <= daysInMonth[month - 1];
}

// ---------------------------------------------------------------------------------------------
// Small helpers

/** Collects errors under a path prefix such as `batch[3]`. Nested collectors share one list. */
class Errors {
  constructor(
    private readonly prefix: string,
    private readonly list: FieldError[] = [],
  ) {}

  add(path: string, message: string): void {
    const full = this.prefix && path ? `${this.prefix}.${path}` : this.prefix || path;
    this.list.push({ path: full, message });
  }
  nested(prefix: string): Errors {
    return new Errors(this.prefix ? `${this.prefix}.${prefix}` : prefix, this.list);
  }
  count(): number {
    return this.list.length;
  }
  any(): boolean {
    return this.list.length > 0;
  }
  result(): { ok: false; errors: FieldError[] } {
    return { ok: false, errors: this.list };
  }
}

/** A plain object as JSON.parse makes it (not an array, null, Date, Map …). */
function isJsonObject(value: unknown): value is JsonObject {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function isEventType(value: unknown): value is EventType {
  return typeof value === 'string' && (EVENT_TYPES as readonly string[]).includes(value);
}

function isBlank(value: unknown): boolean {
  return value === undefined || value === null || value === '';
}

/** A short description of a bad value for error messages, never echoing large payloads. */
function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return value.length > 40 ? `a ${value.length}-character string` : JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean') return `${typeof value} ${String(value)}`;
  return `a value of type ${typeof value}`;
}

// ---------------------------------------------------------------------------------------------
// Zod schemas, for OpenAPI documentation of the routes.

const id = z.union([z.string(), z.number()]).nullable();
const dateTime = z.string().nullable().describe(`ISO 8601 date-time, e.g. ${DATE_EXAMPLE}; without a zone, UTC`);
const object = z.record(z.string(), z.unknown());

const common = {
  userId: id.optional().describe('Your id for the user. identify/track/page/screen/group need userId or anonymousId.'),
  anonymousId: id.optional().describe('A pseudo-unique id for a user not yet identified.'),
  messageId: z.string().nullable().optional().describe('Unique id of the call, used for de-duplication; generated if absent.'),
  context: object.optional().describe('Extra information about the call (ip, userAgent, traits, …).'),
  integrations: object.optional().describe('Which destinations the call is sent to.'),
  timestamp: dateTime.optional().describe('When the call happened on the client; corrected for clock skew using sentAt.'),
  originalTimestamp: dateTime.optional().describe('The client time of the call; takes precedence over timestamp.'),
  sentAt: dateTime.optional().describe('When the client sent the call.'),
  writeKey: z.string().optional().describe('Source write key, if not sent with Basic auth. Not stored.'),
};

function callSchema<T extends EventType>(type: T, fields: z.ZodRawShape, typeRequired: boolean) {
  const typeField = z.literal(type).describe('The call type; must match the URL.');
  return z.looseObject({ type: typeRequired ? typeField : typeField.optional(), ...common, ...fields });
}

function callSchemas(typeRequired: boolean) {
  const named = { name: z.string().nullable().optional(), category: z.string().nullable().optional() };
  return {
    identify: callSchema('identify', { traits: object.optional().describe('Traits of the user.') }, typeRequired),
    track: callSchema(
      'track',
      { event: z.string().min(1).describe('The name of the action.'), properties: object.optional() },
      typeRequired,
    ),
    page: callSchema('page', { ...named, properties: object.optional() }, typeRequired),
    screen: callSchema('screen', { ...named, properties: object.optional() }, typeRequired),
    group: callSchema('group', { groupId: id.describe('The group id.'), traits: object.optional() }, typeRequired),
    alias: callSchema(
      'alias',
      { userId: id.describe('The new id.'), previousId: id.describe('The id being replaced.') },
      typeRequired,
    ),
  };
}

const single = callSchemas(false);
const inBatch = callSchemas(true);

export const segmentSchemas: {
  identify: ZodType;
  track: ZodType;
  page: ZodType;
  screen: ZodType;
  group: ZodType;
  alias: ZodType;
  batch: ZodType;
} = {
  ...single,
  batch: z.looseObject({
    batch: z
      .array(
        z.discriminatedUnion('type', [
          inBatch.identify,
          inBatch.track,
          inBatch.page,
          inBatch.screen,
          inBatch.group,
          inBatch.alias,
        ]),
      )
      .min(1)
      .max(MAX_BATCH_EVENTS)
      .describe(`Up to ${MAX_BATCH_EVENTS} calls, each at most ${MAX_EVENT_BYTES} bytes; at most ${MAX_BATCH_BYTES} bytes in all.`),
    sentAt: dateTime.optional().describe('When the batch was sent; used for calls without their own sentAt.'),
    context: object.optional().describe('Context shared by all calls; each call’s own context wins.'),
    integrations: object.optional(),
    writeKey: z.string().optional(),
  }),
};
