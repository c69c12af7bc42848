// Pure tests of identity resolution (src/core/resolve.ts). A tiny in-memory store applies each
// ResolutionPlan the way src/store/ingest.ts applyPlan does, so several batches can run in sequence,
// each over the snapshot the previous ones produced.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { deriveFacts } from '../src/core/facts.js';
import { isJunkIdentifier, normalizeEmail, normalizeIdentifier } from '../src/core/identifiers.js';
import { idKey, resolveBatch, type IdentitySnapshot, type ResolutionPlan } from '../src/core/resolve.js';
import {
  PUSH_IDENTIFIER_KINDS,
  STRONG_IDENTIFIER_KINDS,
  type Identifier,
  type IncomingEvent,
  type ProfileState,
} from '../src/core/types.js';

// ---------------------------------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------------------------------

const BASE = Date.UTC(2024, 0, 1);
const at = (minute: number): string => new Date(BASE + minute * 60_000).toISOString();

function ev(p: Partial<IncomingEvent> & { messageId: string }): IncomingEvent {
  const timestamp = p.timestamp ?? at(0);
  return {
    type: 'track',
    userId: null,
    anonymousId: null,
    previousId: null,
    groupId: null,
    event: null,
    properties: {},
    traits: {},
    context: {},
    timestamp,
    originalTimestamp: null,
    sentAt: null,
    receivedAt: timestamp,
    raw: {},
    ...p,
  };
}

type SpecType = 'identify' | 'track' | 'alias' | 'page';

/** A generated call, turned into an IncomingEvent with a unique messageId by `toEvents`. */
interface Spec {
  type: SpecType;
  userId: string | null;
  anonymousId: string | null;
  /** alias only */
  previousId: string | null;
  email: string | null;
  /** identify: traits.email or context.traits.email; other calls always use context.traits.email */
  emailIn: 'traits' | 'context';
  device: { type: 'ios' | 'android'; token: string } | null;
  minute: number;
}

function toEvent(s: Spec, messageId: string): IncomingEvent {
  const traits: Record<string, unknown> = {};
  const context: Record<string, unknown> = {};
  if (s.email !== null) {
    if (s.type === 'identify' && s.emailIn === 'traits') traits.email = s.email;
    else context.traits = { email: s.email };
  }
  if (s.device) context.device = { ...s.device };
  return ev({
    messageId,
    type: s.type,
    userId: s.userId,
    anonymousId: s.anonymousId,
    previousId: s.type === 'alias' ? s.previousId : null,
    event: s.type === 'track' ? 'Clicked' : s.type === 'page' ? 'Home' : null,
    traits: s.type === 'identify' ? traits : {},
    context,
    timestamp: at(s.minute),
  });
}

/** Batches of specs → batches of events with messageIds m0, m1, … unique across batches. */
function toEvents(batches: Spec[][]): IncomingEvent[][] {
  let n = 0;
  return batches.map((b) => b.map((s) => toEvent(s, `m${n++}`)));
}

// ---------------------------------------------------------------------------------------------------
// In-memory store (mirrors src/store/ingest.ts loadSnapshot + applyPlan)
// ---------------------------------------------------------------------------------------------------

class MemStore {
  readonly profiles = new Map<string, { state: ProfileState; mergedInto: string | null }>();
  /** identifier rows: key → row */
  readonly identifiers = new Map<string, { identifier: Identifier; profileId: string }>();
  /** event rows: messageId → row */
  readonly events = new Map<string, { event: IncomingEvent; profileId: string }>();
  readonly plans: ResolutionPlan[] = [];
  private counter = 0;
  readonly newProfileId = (): string => `prf_${String(++this.counter).padStart(4, '0')}`;

  isLive(id: string): boolean {
    return this.profiles.get(id)?.mergedInto === null;
  }

  ownerOf(kind: Identifier['kind'], value: string): string | undefined {
    return this.identifiers.get(idKey({ kind, value }))?.profileId;
  }

  /** ALL live profiles and ALL identifiers: a superset of what the store loads, which must not change results. */
  snapshot(): IdentitySnapshot {
    const owners = new Map<string, string>();
    const profiles: IdentitySnapshot['profiles'] = new Map();
    for (const [id, p] of this.profiles) {
      if (p.mergedInto === null) profiles.set(id, { state: structuredClone(p.state), identifiers: [] });
    }
    for (const [key, row] of this.identifiers) {
      const p = profiles.get(row.profileId);
      // The store throws here too (loadSnapshot: "identifier points at merged profile").
      if (!p) throw new Error(`identifier ${key} points at ${row.profileId}, which is not a live profile`);
      owners.set(key, row.profileId);
      p.identifiers.push({ ...row.identifier });
    }
    return { owners, profiles };
  }

  /** What src/store/ingest.ts loadSnapshot reads: the batch's identifiers, their owners, and all those profiles hold. */
  storeSnapshot(events: IncomingEvent[]): IdentitySnapshot {
    const full = this.snapshot();
    const keys = new Set<string>();
    for (const e of events) {
      const facts = deriveFacts(e);
      for (const i of facts.identifiers) keys.add(idKey(i));
      for (const t of facts.pushTokens) {
        const kind = t.provider === 'fcm' ? 'fcm_token' : t.provider === 'apns' ? 'apns_token' : 'webpush_endpoint';
        keys.add(idKey({ kind, value: t.token }));
      }
      if (e.type === 'alias' && e.previousId) {
        // ingest.ts adds the raw previousId; the normalized one too, so this stays a superset of what
        // the resolver can look up either way.
        for (const value of new Set([e.previousId, normalizeIdentifier('user_id', e.previousId) ?? e.previousId])) {
          keys.add(idKey({ kind: 'user_id', value }));
          keys.add(idKey({ kind: 'anonymous_id', value }));
        }
      }
    }
    const owners = new Map<string, string>();
    const profiles: IdentitySnapshot['profiles'] = new Map();
    for (const k of keys) {
      const owner = full.owners.get(k);
      if (owner === undefined) continue;
      owners.set(k, owner);
      profiles.set(owner, full.profiles.get(owner)!);
    }
    for (const p of profiles.values()) for (const i of p.identifiers) owners.set(idKey(i), full.owners.get(idKey(i))!);
    return { owners, profiles };
  }

  ingest(events: IncomingEvent[]): ResolutionPlan {
    // The store's (smaller) snapshot must give exactly the same plan, new profile ids included.
    const start = this.counter;
    let n = start;
    const minimal = resolveBatch(this.storeSnapshot(events), structuredClone(events), () => `prf_${String(++n).padStart(4, '0')}`);
    const snapshot = this.snapshot();
    const before = structuredClone(snapshot);
    const plan = resolveBatch(snapshot, events, this.newProfileId);
    // Pure: the snapshot is left as it was.
    expect(snapshot).toEqual(before);
    expect(minimal, 'plan over the store-sized snapshot').toEqual(plan);
    this.apply(plan);
    this.plans.push(plan);
    return plan;
  }

  private apply(plan: ResolutionPlan): void {
    for (const p of plan.profiles) {
      const existing = this.profiles.get(p.state.id);
      expect(p.isNew, `profile ${p.state.id} isNew`).toBe(existing === undefined);
      // INSERT … ON CONFLICT (id) DO UPDATE: merged_into is left as it is.
      this.profiles.set(p.state.id, { state: p.state, mergedInto: existing?.mergedInto ?? null });
    }
    for (const m of plan.merges) if (!m.absorbedIsNew) this.absorb(m.survivorId, m.absorbedId);
    for (const n of plan.newIdentifiers) {
      const key = idKey(n.identifier);
      // identifiers has a unique (workspace_id, kind, value) key: a second insert would fail the batch.
      expect(this.identifiers.has(key), `newIdentifiers ${key} already stored`).toBe(false);
      this.identifiers.set(key, { identifier: n.identifier, profileId: n.profileId });
    }
    for (const m of plan.movedIdentifiers) {
      const row = this.identifiers.get(idKey(m.identifier));
      if (row) row.profileId = m.profileId; // UPDATE … WHERE kind/value: no row, no change
    }
    for (const { event, profileId } of plan.events) {
      expect(this.events.has(event.messageId), `event ${event.messageId} stored twice`).toBe(false);
      this.events.set(event.messageId, { event, profileId });
    }
  }

  private absorb(survivorId: string, absorbedId: string): void {
    for (const row of this.identifiers.values()) if (row.profileId === absorbedId) row.profileId = survivorId;
    for (const row of this.events.values()) if (row.profileId === absorbedId) row.profileId = survivorId;
    const absorbed = this.profiles.get(absorbedId);
    if (absorbed) absorbed.mergedInto = survivorId;
    for (const p of this.profiles.values()) if (p.mergedInto === absorbedId) p.mergedInto = survivorId;
  }

  /** Identifier keys grouped by profile, as a canonical set of sets (empty groups left out). */
  partition(filter: (i: Identifier) => boolean = () => true): string[][] {
    const groups = new Map<string, string[]>();
    for (const [key, row] of this.identifiers) {
      if (!filter(row.identifier)) continue;
      const g = groups.get(row.profileId) ?? [];
      g.push(key);
      groups.set(row.profileId, g);
    }
    return canonical([...groups.values()]);
  }

  userIdsOf(profileId: string): string[] {
    return [...this.identifiers.values()]
      .filter((r) => r.profileId === profileId && r.identifier.kind === 'user_id')
      .map((r) => r.identifier.value);
  }
}

function canonical(groups: string[][]): string[][] {
  return groups
    .map((g) => [...g].sort())
    .sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : JSON.stringify(a) > JSON.stringify(b) ? 1 : 0));
}

const isStrong = (i: Identifier): boolean => STRONG_IDENTIFIER_KINDS.includes(i.kind);

// ---------------------------------------------------------------------------------------------------
// Invariants, checked after every batch
// ---------------------------------------------------------------------------------------------------

function checkInvariants(store: MemStore, plan: ResolutionPlan, batch: IncomingEvent[], ownersBefore: Map<string, string>): void {
  // 1. Every identifier points at a live profile; the plan's identifier lists are consistent.
  for (const [key, row] of store.identifiers) {
    expect(store.isLive(row.profileId), `identifier ${key} → ${row.profileId} is not a live profile`).toBe(true);
    expect(idKey(row.identifier)).toBe(key);
  }
  const newKeys = plan.newIdentifiers.map((n) => idKey(n.identifier));
  expect(new Set(newKeys).size, 'newIdentifiers has duplicates').toBe(newKeys.length);
  for (const k of newKeys) expect(ownersBefore.has(k), `newIdentifiers ${k} was already owned`).toBe(false);
  const movedKeys = plan.movedIdentifiers.map((m) => idKey(m.identifier));
  expect(new Set(movedKeys).size, 'movedIdentifiers has duplicates').toBe(movedKeys.length);
  for (const k of movedKeys) expect(ownersBefore.has(k), `movedIdentifiers ${k} was not owned before`).toBe(true);
  for (const p of plan.profiles) expect(store.isLive(p.state.id), `plan profile ${p.state.id} is live`).toBe(true);
  for (const m of plan.merges) {
    expect(m.survivorId).not.toBe(m.absorbedId);
    expect(store.isLive(m.absorbedId), `absorbed ${m.absorbedId} is not live`).toBe(false);
  }

  // 2. Every event of the batch is assigned once, in order, to a live profile; every stored event's profile is live.
  expect(plan.events.map((e) => e.event.messageId)).toEqual(batch.map((e) => e.messageId));
  for (const { event, profileId } of plan.events) {
    expect(store.isLive(profileId), `event ${event.messageId} → ${profileId} is not live`).toBe(true);
    // An event with a usable userId ends up on the profile that owns that user_id.
    const uid = normalizeIdentifier('user_id', event.userId);
    if (uid !== null) expect(store.ownerOf('user_id', uid), `owner of user_id:${uid} (event ${event.messageId})`).toBe(profileId);
  }
  for (const [messageId, row] of store.events) {
    expect(store.isLive(row.profileId), `stored event ${messageId} → ${row.profileId} is not live`).toBe(true);
  }

  // 3. One user_id per profile, unless an alias call joined them (then an alias event sits on that profile).
  for (const [id, p] of store.profiles) {
    if (p.mergedInto !== null) continue;
    const uids = store.userIdsOf(id);
    if (uids.length <= 1) continue;
    const aliases = [...store.events.values()].filter((r) => r.profileId === id && r.event.type === 'alias');
    expect(aliases.length, `profile ${id} holds user_ids ${uids.join(', ')} without any alias`).toBeGreaterThan(0);
  }

  // 4. Junk never becomes an identifier; values are normalized.
  for (const { identifier } of store.identifiers.values()) {
    expect(isJunkIdentifier(identifier.value), `junk identifier ${idKey(identifier)}`).toBe(false);
    expect(identifier.value).toBe(identifier.value.trim());
    if (identifier.kind === 'email') expect(normalizeEmail(identifier.value)).toBe(identifier.value);
  }

  // 7. Conflicts name two different live profiles, and the identifier stayed with the other one.
  for (const c of plan.conflicts) {
    const where = `conflict on ${idKey(c.identifier)} (${c.messageId}): ${c.profileId} vs ${c.otherProfileId}`;
    expect(c.profileId, where).not.toBe(c.otherProfileId);
    expect(store.isLive(c.profileId), where).toBe(true);
    expect(store.isLive(c.otherProfileId), where).toBe(true);
    expect(store.identifiers.get(idKey(c.identifier))?.profileId, where).toBe(c.otherProfileId);
    // profileId is the conflicting event's own profile.
    expect(plan.events.find((e) => e.event.messageId === c.messageId)?.profileId, where).toBe(c.profileId);
  }
}

/** Strict form of property 3, for inputs without alias calls. */
function checkOneUserIdPerProfile(store: MemStore): void {
  for (const [id, p] of store.profiles) {
    if (p.mergedInto !== null) continue;
    const uids = store.userIdsOf(id);
    expect(uids.length, `profile ${id} holds user_ids ${uids.join(', ')}`).toBeLessThanOrEqual(1);
  }
}

function runBatches(batches: IncomingEvent[][], extra?: (store: MemStore) => void): MemStore {
  const store = new MemStore();
  for (const batch of batches) {
    const ownersBefore = store.snapshot().owners;
    const plan = store.ingest(batch);
    checkInvariants(store, plan, batch, ownersBefore);
    extra?.(store);
  }
  return store;
}

// ---------------------------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------------------------

const USERS = ['u0', 'u1', 'u2', 'u3', 'u4'];
const ANONS = ['a0', 'a1', 'a2', 'a3', 'a4', 'a5'];
const EMAILS = ['e0@x.com', 'e1@x.com', 'e2@x.com', 'e3@x.com'];
const TOKENS = ['t0', 't1', 't2'];
const JUNK = ['null', 'anonymous', '0', '', '-1'];
/** Junk the Segment parser lets through as an id ('' becomes null there). */
const JUNK_IDS = ['null', 'anonymous', '0', '-1', ' NULL ', 'undefined', ' '];

function idOr<T extends string>(values: readonly T[], junk: readonly string[] = JUNK): fc.Arbitrary<string | null> {
  return fc.oneof(
    { weight: 5, arbitrary: fc.constantFrom(...values) },
    { weight: 1, arbitrary: fc.constantFrom(...junk) },
    { weight: 2, arbitrary: fc.constant(null) },
  );
}

const deviceArb = fc.option(
  fc.record({ type: fc.constantFrom('ios' as const, 'android' as const), token: fc.constantFrom(...TOKENS, ...JUNK) }),
  { freq: 4 },
);

function specArb(users: string[], withAlias: boolean): fc.Arbitrary<Spec> {
  const types: SpecType[] = withAlias ? ['identify', 'track', 'alias', 'page'] : ['identify', 'track', 'page'];
  return fc
    .record({
      type: fc.constantFrom(...types),
      userId: idOr(users, [...JUNK, ...JUNK_IDS]),
      anonymousId: idOr(ANONS, [...JUNK, ...JUNK_IDS]),
      // Padded ids are what the Segment parser passes through: previousId is not trimmed there.
      previousId: fc.constantFrom(...users, ...ANONS, ...JUNK_IDS, ` ${users[1]} `, 'a2 '),
      aliasUserId: fc.constantFrom(...users, ...users, ...JUNK_IDS.slice(0, 2)),
      email: idOr([...EMAILS, 'E1@X.com '], JUNK),
      emailIn: fc.constantFrom('traits' as const, 'context' as const),
      device: deviceArb,
      minute: fc.integer({ min: 0, max: 30 }),
    })
    .map(({ aliasUserId, ...s }) => (s.type === 'alias' ? { ...s, userId: aliasUserId } : { ...s, previousId: null }));
}

/** Splits `items` into 1–4 non-empty contiguous batches. */
function batchesOf<T>(items: T[], cuts: number[]): T[][] {
  const at = [...new Set(cuts.map((c) => c % (items.length + 1)))].sort((a, b) => a - b);
  const out: T[][] = [];
  let start = 0;
  for (const c of [...at, items.length]) {
    if (c > start) out.push(items.slice(start, c));
    start = Math.max(start, c);
  }
  return out;
}

function scenarioArb(withAlias: boolean): fc.Arbitrary<Spec[][]> {
  return fc.integer({ min: 3, max: 5 }).chain((n) =>
    fc
      .tuple(
        fc.array(specArb(USERS.slice(0, n), withAlias), { minLength: 1, maxLength: 24 }),
        fc.array(fc.nat(), { maxLength: 3 }),
      )
      .map(([specs, cuts]) => batchesOf(specs, cuts)),
  );
}

/**
 * Conflict-free: every anonymousId, email (and alias previousId) belongs to exactly one user, so a
 * connected component never holds two user ids. Push tokens are shared (they move, never merge).
 */
const conflictFreeArb: fc.Arbitrary<{ specs: Spec[]; cuts: number[] }> = fc.integer({ min: 3, max: 5 }).chain((n) =>
  fc
    .tuple(
      fc.array(fc.integer({ min: 0, max: n - 1 }), { minLength: ANONS.length, maxLength: ANONS.length }),
      fc.array(fc.integer({ min: 0, max: n - 1 }), { minLength: EMAILS.length, maxLength: EMAILS.length }),
    )
    .chain(([anonOwner, emailOwner]) => {
      const anonsOf = (u: number) => ANONS.filter((_, i) => anonOwner[i] === u);
      const emailsOf = (u: number) => EMAILS.filter((_, i) => emailOwner[i] === u);
      const spec = fc.integer({ min: 0, max: n - 1 }).chain((u) => {
        const anons = anonsOf(u);
        const emails = emailsOf(u);
        return fc
          .record({
            type: fc.constantFrom<SpecType>('identify', 'track', 'alias', 'page'),
            userId: idOr([USERS[u]]),
            anonymousId: anons.length > 0 ? idOr(anons) : fc.constantFrom(null, ...JUNK),
            previousId: anons.length > 0 ? fc.constantFrom(...anons) : fc.constant(null),
            email: emails.length > 0 ? idOr(emails) : fc.constantFrom(null, ...JUNK),
            emailIn: fc.constantFrom('traits' as const, 'context' as const),
            device: deviceArb,
            minute: fc.integer({ min: 0, max: 30 }),
          })
          .map((s): Spec => {
            if (s.type !== 'alias') return { ...s, previousId: null };
            // An alias needs a previousId; a user without anonymous ids identifies instead.
            return s.previousId === null ? { ...s, type: 'identify' } : { ...s, userId: USERS[u] };
          });
      });
      return fc.record({
        specs: fc.array(spec, { minLength: 1, maxLength: 24 }),
        cuts: fc.array(fc.nat(), { maxLength: 3 }),
      });
    }),
);

/** The expected partition of strong identifiers for conflict-free input: connected components of co-occurrence. */
function components(events: IncomingEvent[]): string[][] {
  const parent = new Map<string, string>();
  const find = (k: string): string => {
    if (!parent.has(k)) parent.set(k, k);
    let r = k;
    while (parent.get(r) !== r) r = parent.get(r)!;
    parent.set(k, r);
    return r;
  };
  for (const e of events) {
    const keys = deriveFacts(e).identifiers.map(idKey);
    // In conflictFreeArb previousId is always an anonymous id of the same user, never a user_id.
    if (e.type === 'alias' && e.previousId) keys.push(idKey({ kind: 'anonymous_id', value: e.previousId }));
    keys.forEach(find);
    for (const k of keys.slice(1)) parent.set(find(k), find(keys[0]));
  }
  const groups = new Map<string, string[]>();
  for (const k of parent.keys()) {
    const r = find(k);
    groups.set(r, [...(groups.get(r) ?? []), k]);
  }
  return canonical([...groups.values()]);
}

const RUNS = { numRuns: 400 };

// ---------------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------------

describe('resolveBatch properties', () => {
  it('invariants 1, 2, 4, 7 and strict 3 hold after every batch (no alias calls)', () => {
    fc.assert(
      fc.property(scenarioArb(false), (specs) => {
        runBatches(toEvents(specs), checkOneUserIdPerProfile);
      }),
      RUNS,
    );
  });

  it('invariants 1–4 and 7 hold after every batch (with alias calls)', () => {
    fc.assert(
      fc.property(scenarioArb(true), (specs) => {
        runBatches(toEvents(specs));
      }),
      RUNS,
    );
  });

  it('5. determinism: the same batches give the same partition (and the same plans)', () => {
    fc.assert(
      fc.property(scenarioArb(true), (specs) => {
        const batches = toEvents(specs);
        const a = new MemStore();
        const b = new MemStore();
        for (const batch of batches) {
          // Each side gets its own copy of the events, so nothing can leak between runs.
          const pa = a.ingest(structuredClone(batch));
          const pb = b.ingest(structuredClone(batch));
          expect(b.partition()).toEqual(a.partition());
          expect(pb).toEqual(pa);
        }
      }),
      { numRuns: 200 },
    );
  });

  it('6. batching invariance for conflict-free input: one batch = one event per batch = any split', () => {
    fc.assert(
      fc.property(conflictFreeArb, ({ specs, cuts }) => {
        const all = toEvents([specs])[0];
        const one = runBatches([all], checkOneUserIdPerProfile);
        const each = runBatches(all.map((e) => [e]), checkOneUserIdPerProfile);
        const split = runBatches(batchesOf(all, cuts), checkOneUserIdPerProfile);
        expect(each.partition()).toEqual(one.partition());
        expect(split.partition()).toEqual(one.partition());
        // Conflict-free input never records conflicts.
        for (const s of [one, each, split]) expect(s.plans.flatMap((p) => p.conflicts)).toEqual([]);
        // And the strong identifiers are grouped exactly by co-occurrence.
        expect(one.partition(isStrong)).toEqual(components(all));
        // Events are grouped the same way too.
        const eventGroups = (s: MemStore) => {
          const groups = new Map<string, string[]>();
          for (const [m, r] of s.events) groups.set(r.profileId, [...(groups.get(r.profileId) ?? []), m]);
          return canonical([...groups.values()]);
        };
        expect(eventGroups(each)).toEqual(eventGroups(one));
      }),
      { numRuns: 300 },
    );
  });
});

// ---------------------------------------------------------------------------------------------------
// Table tests
// ---------------------------------------------------------------------------------------------------

describe('resolveBatch cases', () => {
  const ident = (messageId: string, p: Partial<IncomingEvent>) => ev({ messageId, type: 'identify', ...p });

  it('anonymous activity then identify with that anonymousId lands on one profile', () => {
    const store = runBatches([
      [ev({ messageId: 'm1', anonymousId: 'a0', timestamp: at(1) })],
      [ident('m2', { userId: 'u0', anonymousId: 'a0', traits: { email: 'ann@x.com' }, timestamp: at(2) })],
    ]);
    const p = store.ownerOf('anonymous_id', 'a0')!;
    expect(store.ownerOf('user_id', 'u0')).toBe(p);
    expect(store.ownerOf('email', 'ann@x.com')).toBe(p);
    expect(store.events.get('m1')!.profileId).toBe(p);
    expect(store.events.get('m2')!.profileId).toBe(p);
    expect(store.plans[1].merges).toEqual([]);
  });

  it('anonymous profile and identified profile merge when one call links them', () => {
    for (const split of [false, true]) {
      const events = [
        ev({ messageId: 'm1', anonymousId: 'a0', timestamp: at(1) }),
        ident('m2', { userId: 'u0', anonymousId: 'a1', timestamp: at(2) }),
        ev({ messageId: 'm3', userId: 'u0', anonymousId: 'a0', timestamp: at(3) }),
      ];
      const store = runBatches(split ? events.map((e) => [e]) : [events]);
      const p = store.ownerOf('user_id', 'u0')!;
      expect(store.partition()).toEqual([['anonymous_id:a0', 'anonymous_id:a1', 'user_id:u0']]);
      for (const m of ['m1', 'm2', 'm3']) expect(store.events.get(m)!.profileId).toBe(p);
      const merges = store.plans.flatMap((pl) => pl.merges);
      expect(merges).toHaveLength(1);
      expect(merges[0]).toMatchObject({ survivorId: p, reason: 'shared anonymous_id', messageId: 'm3' });
      expect(store.isLive(merges[0].absorbedId)).toBe(false);
      expect(merges[0].absorbedIsNew).toBe(!split);
    }
  });

  it('identify A with email X, then B with email X: two profiles, a conflict, X stays with A', () => {
    const store = runBatches([
      [ident('m1', { userId: 'A', traits: { email: 'x@x.com' }, timestamp: at(1) })],
      [ident('m2', { userId: 'B', traits: { email: 'X@x.com' }, timestamp: at(2) })],
    ]);
    const a = store.ownerOf('user_id', 'A')!;
    const b = store.ownerOf('user_id', 'B')!;
    expect(a).not.toBe(b);
    expect(store.isLive(a) && store.isLive(b)).toBe(true);
    expect(store.ownerOf('email', 'x@x.com')).toBe(a);
    expect(store.plans[1].merges).toEqual([]);
    expect(store.plans[1].conflicts).toEqual([
      expect.objectContaining({ profileId: b, otherProfileId: a, identifier: { kind: 'email', value: 'x@x.com' }, messageId: 'm2' }),
    ]);
    expect(store.events.get('m2')!.profileId).toBe(b);
  });

  it('the same conflict inside one batch', () => {
    const store = runBatches([
      [
        ident('m1', { userId: 'A', traits: { email: 'x@x.com' }, timestamp: at(1) }),
        ident('m2', { userId: 'B', traits: { email: 'x@x.com' }, timestamp: at(2) }),
      ],
    ]);
    const a = store.ownerOf('user_id', 'A')!;
    const b = store.ownerOf('user_id', 'B')!;
    expect(a).not.toBe(b);
    expect(store.ownerOf('email', 'x@x.com')).toBe(a);
    expect(store.plans[0].conflicts).toHaveLength(1);
  });

  it('alias with an unknown previousId records it as an anonymous_id of the userId profile', () => {
    const store = runBatches([
      [ident('m1', { userId: 'u0', timestamp: at(1) })],
      [ev({ messageId: 'm2', type: 'alias', userId: 'u0', previousId: 'old-42', timestamp: at(2) })],
    ]);
    const p = store.ownerOf('user_id', 'u0')!;
    expect(store.ownerOf('anonymous_id', 'old-42')).toBe(p);
    expect(store.ownerOf('user_id', 'old-42')).toBeUndefined();
    expect(store.plans[1].newIdentifiers).toEqual([{ identifier: { kind: 'anonymous_id', value: 'old-42' }, profileId: p }]);
  });

  it('alias with a known user_id previousId joins two identified profiles', () => {
    const store = runBatches([
      [ident('m1', { userId: 'old', timestamp: at(1) }), ident('m2', { userId: 'new', timestamp: at(2) })],
      [ev({ messageId: 'm3', type: 'alias', userId: 'new', previousId: 'old', timestamp: at(3) })],
    ]);
    const p = store.ownerOf('user_id', 'new')!;
    expect(store.ownerOf('user_id', 'old')).toBe(p);
    expect(store.plans[1].merges).toEqual([expect.objectContaining({ reason: 'alias', survivorId: p })]);
    // Both had a user_id, so the older profile (created by m1) survives.
    expect(store.events.get('m1')!.profileId).toBe(p);
    expect(p).toBe('prf_0001');
  });

  it('a push token moves from one user to the next without merging', () => {
    const device = { token: 'tok-1', type: 'ios' };
    const store = runBatches([
      [ident('m1', { userId: 'u0', context: { device }, timestamp: at(1) })],
      [ev({ messageId: 'm2', userId: 'u1', context: { device }, timestamp: at(2) })],
    ]);
    const p0 = store.ownerOf('user_id', 'u0')!;
    const p1 = store.ownerOf('user_id', 'u1')!;
    expect(p0).not.toBe(p1);
    expect(store.isLive(p0) && store.isLive(p1)).toBe(true);
    expect(store.ownerOf('apns_token', 'tok-1')).toBe(p1);
    expect(store.plans[1].merges).toEqual([]);
    expect(store.plans[1].conflicts).toEqual([]);
    expect(store.plans[1].movedIdentifiers).toEqual([{ identifier: { kind: 'apns_token', value: 'tok-1' }, profileId: p1 }]);
    expect(store.profiles.get(p0)!.state.contactPoints.push).toEqual([]);
    expect(store.profiles.get(p1)!.state.contactPoints.push.map((t) => [t.provider, t.token])).toEqual([['apns', 'tok-1']]);
  });

  it('a push token moving inside one batch is a new identifier with its final owner', () => {
    const device = { token: 'tok-2', type: 'android' };
    const store = runBatches([
      [
        ident('m1', { userId: 'u0', context: { device }, timestamp: at(1) }),
        ev({ messageId: 'm2', userId: 'u1', context: { device }, timestamp: at(2) }),
      ],
    ]);
    const p1 = store.ownerOf('user_id', 'u1')!;
    expect(store.plans[0].newIdentifiers).toContainEqual({ identifier: { kind: 'fcm_token', value: 'tok-2' }, profileId: p1 });
    expect(store.plans[0].movedIdentifiers).toEqual([]);
    expect(store.profiles.get(store.ownerOf('user_id', 'u0')!)!.state.contactPoints.push).toEqual([]);
  });

  it('merge survivor: the profile with a user_id, even when it is newer', () => {
    const store = runBatches([
      [ev({ messageId: 'm1', anonymousId: 'a0', timestamp: at(0) })],
      [ident('m2', { userId: 'u0', anonymousId: 'a1', timestamp: at(5) })],
      [ev({ messageId: 'm3', anonymousId: 'a0', userId: 'u0', timestamp: at(6) })],
    ]);
    const anon = store.plans[0].events[0].profileId;
    const user = store.plans[1].events[0].profileId;
    expect(store.plans[2].merges).toEqual([expect.objectContaining({ survivorId: user, absorbedId: anon, absorbedIsNew: false })]);
    expect(store.profiles.get(anon)!.mergedInto).toBe(user);
    // The survivor keeps the earliest createdAt.
    expect(store.profiles.get(user)!.state.createdAt).toBe(at(0));
  });

  it('merge survivor: otherwise the older profile, whichever identifier found it', () => {
    // The email (checked before the anonymousId) leads to the newer profile; the older one still survives.
    const store = runBatches([
      [ev({ messageId: 'm1', anonymousId: 'a0', timestamp: at(0) })],
      [ident('m2', { anonymousId: 'a1', traits: { email: 'e@x.com' }, timestamp: at(5) })],
      [ev({ messageId: 'm3', anonymousId: 'a0', context: { traits: { email: 'e@x.com' } }, timestamp: at(6) })],
    ]);
    const older = store.plans[0].events[0].profileId;
    const newer = store.plans[1].events[0].profileId;
    expect(store.plans[2].merges).toEqual([expect.objectContaining({ survivorId: older, absorbedId: newer })]);
    expect(store.ownerOf('email', 'e@x.com')).toBe(older);
    expect(store.events.get('m2')!.profileId).toBe(older);
  });

  it.each(JUNK_IDS.concat(''))('junk %j as userId / anonymousId / email links nothing', (junk) => {
    const store = runBatches([
      [
        ident('m1', { userId: junk, anonymousId: junk, traits: { email: junk }, timestamp: at(1) }),
        ident('m2', { userId: junk, anonymousId: junk, traits: { email: junk }, timestamp: at(2) }),
      ],
    ]);
    expect(store.identifiers.size).toBe(0);
    expect(store.events.get('m1')!.profileId).not.toBe(store.events.get('m2')!.profileId);
  });

  // ---- regressions for bugs found by the properties above (see the report) ----

  it.each(['null', 'anonymous', ' '])('alias with junk previousId %j records nothing and merges no strangers', (junk) => {
    const store = runBatches([
      [ev({ messageId: 'm1', type: 'alias', userId: 'u0', previousId: junk, timestamp: at(1) })],
      [ev({ messageId: 'm2', type: 'alias', userId: 'u1', previousId: junk, timestamp: at(2) })],
    ]);
    expect([...store.identifiers.keys()].sort()).toEqual(['user_id:u0', 'user_id:u1']);
    expect(store.ownerOf('user_id', 'u0')).not.toBe(store.ownerOf('user_id', 'u1'));
  });

  it('alias previousId is trimmed like every other id', () => {
    const store = runBatches([
      [ident('m1', { userId: 'u0', timestamp: at(1) }), ident('m2', { userId: 'u1', timestamp: at(2) })],
      [ev({ messageId: 'm3', type: 'alias', userId: 'u1', previousId: ' u0 ', timestamp: at(3) })],
    ]);
    expect(store.ownerOf('user_id', 'u0')).toBe(store.ownerOf('user_id', 'u1'));
    expect(store.ownerOf('anonymous_id', ' u0 ')).toBeUndefined();
  });

  it('an unowned userId is not added to a profile that merged with another user_id', () => {
    // m3 carries u1 (new), e0 (anonymous profile P) and a0 (u2's profile Q). e0 makes P the primary; P and
    // Q may merge on their own (only u2), but adding u1 to the result gives one profile two user_ids.
    const store = runBatches([
      [
        ev({ messageId: 'm1', userId: 'u2', anonymousId: 'a0', timestamp: at(1) }),
        ident('m2', { anonymousId: 'a1', traits: { email: 'e0@x.com' }, timestamp: at(2) }),
      ],
      [ident('m3', { userId: 'u1', anonymousId: 'a0', traits: { email: 'e0@x.com' }, timestamp: at(3) })],
    ], checkOneUserIdPerProfile);
    expect(store.ownerOf('user_id', 'u1')).not.toBe(store.ownerOf('user_id', 'u2'));
  });

  it('a conflict resolved by an alias later in the same batch does not name one profile twice', () => {
    // m2 conflicts with u2's profile over a3; m3 then aliases u3 to u2, merging the two. After live() the
    // conflict would read "prf_0001 vs prf_0001".
    const store = runBatches([
      [
        ident('m1', { userId: 'u2', anonymousId: 'a3', timestamp: at(1) }),
        ident('m2', { userId: 'u3', anonymousId: 'a3', timestamp: at(2) }),
        ev({ messageId: 'm3', type: 'alias', userId: 'u2', previousId: 'u3', timestamp: at(3) }),
      ],
    ]);
    expect(store.ownerOf('user_id', 'u2')).toBe(store.ownerOf('user_id', 'u3'));
  });

  it('a new profile that absorbed a stored one and is then absorbed itself leaves no dangling identifiers', () => {
    // Batch 2: m3 creates N (older than the stored X by timestamp), m4 merges X into N (both without a
    // user_id, N older), m5 merges N into the stored Y (it has u0). N is never stored, yet the plan's
    // first merge (absorbedIsNew: false) tells the store to move X's rows to N.
    const store = runBatches([
      [
        ident('m1', { anonymousId: 'a1', traits: { email: 'e0@x.com' }, timestamp: at(10) }), // X
        ev({ messageId: 'm2', userId: 'u0', timestamp: at(10) }), // Y
      ],
      [
        ev({ messageId: 'm3', anonymousId: 'a5', timestamp: at(0) }), // N
        ev({ messageId: 'm4', anonymousId: 'a5', context: { traits: { email: 'e0@x.com' } }, timestamp: at(1) }),
        ev({ messageId: 'm5', userId: 'u0', anonymousId: 'a5', timestamp: at(3) }),
      ],
    ]);
    const y = store.ownerOf('user_id', 'u0')!;
    expect(store.ownerOf('anonymous_id', 'a1')).toBe(y);
    expect(store.events.get('m1')!.profileId).toBe(y);
  });
});
