import { expect } from 'vitest';
import { admin, call, ingest, SECRET_KEY } from './server.js';

// Shared helpers for the journey tests: publishing journeys, moving the virtual clock, reading messages
// and runs, and waiting (bounded) for the background outbox to deliver what an ingest queued.

export const VIRTUAL_START = '2026-01-05T09:00:00Z';
export const VIRTUAL_ENV = { CHORUS_VIRTUAL_CLOCK: VIRTUAL_START };

export interface Message {
  id: string;
  profileId: string;
  channel: string | null;
  provider: string | null;
  category: string;
  status: string;
  reason: string | null;
  to: string | null;
  journey: { key: string; version: number | null } | null;
  step: string | null;
  runId: string | null;
  content: Record<string, any> | null;
  createdAt: string;
  sentAt: string | null;
  updatedAt: string;
}

export interface RunView {
  id: string;
  journey: { key: string; version: number };
  status: string;
  holdout: boolean;
  enteredAt: string;
  currentSteps: { step: string; kind: string; event: string | null; until: string | null }[];
  convertedAt: string | null;
  goalDeadline: string | null;
  endedAt: string | null;
  endReason: string | null;
  steps: { step: string; type: string; at: string; outcome: string; detail: any }[];
}

const bearer = `Bearer ${SECRET_KEY}`;

/** Sends a YAML (or any text) body with the given content type. */
export function sendText(url: string, method: string, pathname: string, text: string, contentType = 'application/yaml') {
  return call(url, method, pathname, { raw: text, auth: bearer, headers: { 'content-type': contentType } });
}

/** Creates (or replaces the draft of) a journey and publishes it; returns the published version. */
export async function publishJourney(url: string, spec: Record<string, unknown> | string): Promise<number> {
  const key = typeof spec === 'string' ? /^key:\s*([a-z0-9_-]+)/m.exec(spec)?.[1] : (spec.key as string);
  if (!key) throw new Error('no key in the journey spec');
  const existing = await admin(url, 'GET', `/v1/journeys/${key}`);
  const method = existing.status === 200 ? 'PUT' : 'POST';
  const pathname = method === 'PUT' ? `/v1/journeys/${key}` : '/v1/journeys';
  const saved = typeof spec === 'string' ? await sendText(url, method, pathname, spec) : await admin(url, method, pathname, spec);
  expect(saved.status, JSON.stringify(saved.body)).toBe(method === 'POST' ? 201 : 200);
  const pub = await admin(url, 'POST', `/v1/journeys/${key}/publish`);
  expect(pub.status, JSON.stringify(pub.body)).toBe(200);
  return pub.body.version as number;
}

export async function clockNow(url: string): Promise<Date> {
  const r = await admin(url, 'GET', '/v1/clock');
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return new Date(r.body.now as string);
}

/** Advances the virtual clock (by a duration); returns the new time. */
export async function advance(url: string, by: string): Promise<Date> {
  const r = await admin(url, 'POST', '/v1/clock/advance', { by });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return new Date(r.body.now as string);
}

export async function advanceTo(url: string, to: Date): Promise<Date> {
  const r = await admin(url, 'POST', '/v1/clock/advance', { to: to.toISOString() });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return new Date(r.body.now as string);
}

export const iso = (d: Date) => d.toISOString();
export const plus = (d: Date, ms: number) => new Date(d.getTime() + ms);
export const HOUR = 3_600_000;
export const DAY = 24 * HOUR;

export async function ok(p: Promise<{ status: number; body: any }>): Promise<any> {
  const r = await p;
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body;
}

export const track = (url: string, who: Record<string, unknown>, event: string, properties: Record<string, unknown> = {}) =>
  ok(ingest(url, 'track', { ...who, event, properties }));

export const identify = (url: string, who: Record<string, unknown>, traits: Record<string, unknown>) => ok(ingest(url, 'identify', { ...who, traits }));

/** All of a customer's messages, oldest first (the API lists newest first). */
export async function messagesOf(url: string, ref: string): Promise<Message[]> {
  const r = await admin(url, 'GET', `/v1/messages?profile=${encodeURIComponent(ref)}&limit=500`);
  if (r.status === 404) return [];
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return [...(r.body.data as Message[])].reverse();
}

const IN_FLIGHT = new Set(['queued', 'sending']);

/**
 * Polls the customer's messages (up to `timeoutMs`) until there are at least `count` and none is still
 * queued or being sent; returns them oldest first. The outbox delivers in the background after an ingest.
 */
export async function settledMessages(url: string, ref: string, count = 0, timeoutMs = 10_000): Promise<Message[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const list = await messagesOf(url, ref);
    if (list.length >= count && !list.some((m) => IN_FLIGHT.has(m.status))) return list;
    if (Date.now() > deadline) {
      throw new Error(`messages of ${ref} did not settle (${count} expected): ${JSON.stringify(list.map((m) => [m.step, m.channel, m.status]))}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}

export async function runsOf(url: string, ref: string): Promise<RunView[]> {
  const r = await admin(url, 'GET', `/v1/profiles/${encodeURIComponent(ref)}/runs`);
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body.data as RunView[];
}

export async function runsIn(url: string, ref: string, journeyKey: string): Promise<RunView[]> {
  return (await runsOf(url, ref)).filter((r) => r.journey.key === journeyKey);
}

export async function profile(url: string, ref: string): Promise<any> {
  return ok(admin(url, 'GET', `/v1/profiles/${encodeURIComponent(ref)}`));
}

/** `[step, channel, status]` of each message, oldest first. */
export const summary = (list: Message[]) => list.map((m) => [m.step, m.channel, m.status]);

/**
 * A minimal email send step. Transactional, so the send gate's quiet hours and caps (which depend on the
 * time of day the shared virtual clock happens to be at) never defer it: these tests are about the engine.
 */
export function email(subject: string, text = 'Hello', extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { send: { channel: 'email', category: 'transactional', content: { email: { subject, text } } }, ...extra };
}
