import { deriveFacts } from './facts.js';
import { sameJson } from './same-json.js';
import { normalizeIdentifier } from './identifiers.js';
import { applyFacts, mergeProfiles } from './profile.js';
import { emptyProfile, pushIdentifierKind, type Identifier, type IncomingEvent, type ProfileFacts, type ProfileState } from './types.js';

// Identity resolution for a batch of events, as a pure function over a snapshot of the identity graph.
// The store loads the snapshot (every identifier the batch mentions, and every identifier and profile
// those lead to) under the profiles' locks, runs this, and writes the plan back in the same transaction.

export const idKey = (i: Identifier): string => `${i.kind}:${i.value}`;

export interface IdentitySnapshot {
  /** identifier key → live profile id */
  owners: Map<string, string>;
  /** live profiles, with every identifier they hold */
  profiles: Map<string, { state: ProfileState; identifiers: Identifier[] }>;
}

export interface Merge {
  survivorId: string;
  absorbedId: string;
  /** true when the absorbed profile was created earlier in this same batch and never stored */
  absorbedIsNew: boolean;
  reason: string;
  messageId: string;
  at: string;
}

export interface Conflict {
  profileId: string;
  otherProfileId: string;
  identifier: Identifier;
  reason: string;
  messageId: string;
  at: string;
}

export interface ResolutionPlan {
  /** Final state of every profile created or changed by the batch (live ones only). */
  profiles: { state: ProfileState; isNew: boolean }[];
  merges: Merge[];
  conflicts: Conflict[];
  /** Identifiers not held by any profile before, with their final owner. */
  newIdentifiers: { identifier: Identifier; profileId: string }[];
  /** Identifiers that moved without a merge (push tokens), with their final owner. */
  movedIdentifiers: { identifier: Identifier; profileId: string }[];
  /** Each event with the live profile it belongs to, and the convention values it carried that were unusable. */
  events: { event: IncomingEvent; profileId: string; rejected: ProfileFacts['rejected'] }[];
}

interface Working {
  owners: Map<string, string>;
  profiles: Map<string, ProfileState>;
  identifiersOf: Map<string, Map<string, Identifier>>;
  created: Set<string>;
  dirty: Set<string>;
  mergedInto: Map<string, string>;
  newIds: Map<string, Identifier>;
  moved: Map<string, Identifier>;
  plan: ResolutionPlan;
}

function userIdsOf(w: Working, profileId: string): Set<string> {
  const out = new Set<string>();
  for (const i of w.identifiersOf.get(profileId)?.values() ?? []) if (i.kind === 'user_id') out.add(i.value);
  return out;
}

/** Merging may not bring two user_ids together, counting the one the event itself carries. */
function canMerge(w: Working, a: string, b: string, eventUserId: string | undefined): boolean {
  const ids = userIdsOf(w, a);
  for (const u of userIdsOf(w, b)) ids.add(u);
  if (eventUserId !== undefined) ids.add(eventUserId);
  return ids.size <= 1;
}

/** The survivor is the profile that has a user_id (when only one has), else the older one. */
function chooseSurvivor(w: Working, a: string, b: string): [string, string] {
  const ua = userIdsOf(w, a).size > 0;
  const ub = userIdsOf(w, b).size > 0;
  if (ua !== ub) return ua ? [a, b] : [b, a];
  const pa = w.profiles.get(a)!;
  const pb = w.profiles.get(b)!;
  if (pa.createdAt !== pb.createdAt) return pa.createdAt < pb.createdAt ? [a, b] : [b, a];
  return a < b ? [a, b] : [b, a];
}

function assign(w: Working, identifier: Identifier, profileId: string): void {
  const key = idKey(identifier);
  const previous = w.owners.get(key);
  if (previous === profileId) return;
  if (previous === undefined) w.newIds.set(key, identifier);
  else {
    w.identifiersOf.get(previous)?.delete(key);
    if (!w.newIds.has(key)) w.moved.set(key, identifier);
  }
  w.owners.set(key, profileId);
  let ids = w.identifiersOf.get(profileId);
  if (!ids) w.identifiersOf.set(profileId, (ids = new Map()));
  ids.set(key, identifier);
}

function merge(w: Working, a: string, b: string, e: IncomingEvent, reason: string): string {
  const [survivorId, absorbedId] = chooseSurvivor(w, a, b);
  const survivor = w.profiles.get(survivorId)!;
  const absorbed = w.profiles.get(absorbedId)!;
  w.profiles.set(survivorId, mergeProfiles(survivor, absorbed, e.timestamp));
  for (const identifier of [...(w.identifiersOf.get(absorbedId)?.values() ?? [])]) {
    // Identifiers of the absorbed profile follow it wholesale (the store moves them with one UPDATE);
    // only record them as new when they were created in this batch.
    const key = idKey(identifier);
    w.owners.set(key, survivorId);
    let ids = w.identifiersOf.get(survivorId);
    if (!ids) w.identifiersOf.set(survivorId, (ids = new Map()));
    ids.set(key, identifier);
  }
  w.identifiersOf.delete(absorbedId);
  w.profiles.delete(absorbedId);
  w.dirty.add(survivorId);
  w.dirty.delete(absorbedId);
  w.mergedInto.set(absorbedId, survivorId);
  w.plan.merges.push({
    survivorId,
    absorbedId,
    absorbedIsNew: w.created.has(absorbedId),
    reason,
    messageId: e.messageId,
    at: e.timestamp,
  });
  return survivorId;
}

function live(w: Working, id: string): string {
  let cur = id;
  while (w.mergedInto.has(cur)) cur = w.mergedInto.get(cur)!;
  return cur;
}

/** alias's previousId, normalized like any id (junk such as "null" links nothing). */
export function aliasPreviousId(e: IncomingEvent): string | null {
  return e.type === 'alias' ? normalizeIdentifier('user_id', e.previousId) : null;
}

/** The identifiers an event links, each with whether it may merge profiles that hold different user_ids. */
function linkedIdentifiers(w: Working, e: IncomingEvent, strong: Identifier[]): { id: Identifier; explicit: boolean }[] {
  const out = strong.map((id) => ({ id, explicit: false }));
  const previousId = aliasPreviousId(e);
  if (previousId !== null) {
    // alias is an explicit instruction that previousId and userId are one person, so it may join two
    // user_ids. previousId may have been a user id or an anonymous id: use whichever is known.
    const asUser: Identifier = { kind: 'user_id', value: previousId };
    const asAnon: Identifier = { kind: 'anonymous_id', value: previousId };
    const previous = w.owners.has(idKey(asUser)) || !w.owners.has(idKey(asAnon)) ? asUser : asAnon;
    if (previous.kind === 'user_id' && !w.owners.has(idKey(asUser))) {
      // Unknown previousId: remember it as an anonymous id, the common case (pre-login activity).
      out.push({ id: asAnon, explicit: true });
    } else out.push({ id: previous, explicit: true });
  }
  return out;
}

function resolveOne(w: Working, e: IncomingEvent, facts: ProfileFacts, newProfileId: () => string): void {
  const links = linkedIdentifiers(w, e, facts.identifiers);
  const eventUserId = facts.identifiers.find((i) => i.kind === 'user_id')?.value;
  const unowned: Identifier[] = [];
  let primary: string | undefined;
  const uid = facts.identifiers.find((i) => i.kind === 'user_id');
  if (uid && w.owners.has(idKey(uid))) primary = w.owners.get(idKey(uid));

  for (const { id, explicit } of links) {
    const owner = w.owners.get(idKey(id));
    if (owner === undefined) {
      unowned.push(id);
      continue;
    }
    if (primary === undefined) {
      const theirs = userIdsOf(w, owner);
      const compatible = explicit || eventUserId === undefined || [...theirs].every((u) => u === eventUserId);
      if (compatible) primary = owner;
      else conflict(w, e, id, owner, `${id.kind} belongs to a profile with a different user_id`);
      continue;
    }
    if (owner === primary) continue;
    if (explicit || canMerge(w, primary, owner, eventUserId)) {
      primary = merge(w, primary, owner, e, explicit ? 'alias' : `shared ${id.kind}`);
    } else {
      conflict(w, e, id, owner, `${id.kind} links two profiles with different user_ids; not merged`);
    }
  }

  if (primary === undefined) {
    primary = newProfileId();
    w.profiles.set(primary, emptyProfile(primary, e.timestamp));
    w.identifiersOf.set(primary, new Map());
    w.created.add(primary);
  }
  for (const id of unowned) assign(w, id, primary);
  // Push tokens follow the device's current user: they move, they never merge.
  for (const t of facts.pushTokens) {
    const kind = pushIdentifierKind(t.provider);
    const previous = w.owners.get(`${kind}:${t.token}`);
    if (previous !== undefined && previous !== primary) {
      const p = w.profiles.get(previous);
      if (p) {
        w.profiles.set(previous, {
          ...p,
          contactPoints: { ...p.contactPoints, push: p.contactPoints.push.filter((x) => x.token !== t.token) },
        });
        w.dirty.add(previous);
      }
    }
    assign(w, { kind, value: t.token }, primary);
  }
  const before = w.profiles.get(primary)!;
  // Most track calls change nothing on the profile: don't rewrite its row for them. One that carries no
  // facts at all (a backend event with only a userId) leaves the profile as it is, without copying it to
  // find that out: its time doesn't count as a change either, in a batch as on its own.
  const after = hasFacts(facts) ? applyFacts(before, facts, e.timestamp, e.type) : before;
  w.profiles.set(primary, after);
  if (w.created.has(primary) || changed(before, after)) w.dirty.add(primary);
  w.plan.events.push({ event: e, profileId: primary, rejected: facts.rejected });
}

function conflict(w: Working, e: IncomingEvent, identifier: Identifier, otherProfileId: string, reason: string): void {
  // profileId is fixed up to the event's final profile once the event is resolved.
  w.plan.conflicts.push({ profileId: '', otherProfileId, identifier, reason, messageId: e.messageId, at: e.timestamp });
}

/** Whether applying these facts could change a profile: anything but identifiers (linked above). */
export function hasFacts(f: ProfileFacts): boolean {
  return (
    f.pushTokens.length > 0 ||
    Object.keys(f.traits).length > 0 ||
    Object.keys(f.contact).length > 0 ||
    Object.keys(f.consent.channels).length > 0 ||
    Object.keys(f.consent.topics).length > 0 ||
    f.timezone !== undefined ||
    f.locale !== undefined ||
    f.preferredChannel !== undefined
  );
}

/** true when anything but `updatedAt` differs. */
function changed(a: ProfileState, b: ProfileState): boolean {
  if (a === b) return false;
  return !sameJson({ ...a, updatedAt: '' }, { ...b, updatedAt: '' });
}

/** `facts`, when given, are deriveFacts(events[i]) computed by the caller (saves deriving them twice). */
export function resolveBatch(
  snapshot: IdentitySnapshot,
  events: IncomingEvent[],
  newProfileId: () => string,
  facts: ProfileFacts[] = events.map(deriveFacts),
): ResolutionPlan {
  const w: Working = {
    owners: new Map(snapshot.owners),
    profiles: new Map(),
    identifiersOf: new Map(),
    created: new Set(),
    dirty: new Set(),
    mergedInto: new Map(),
    newIds: new Map(),
    moved: new Map(),
    plan: { profiles: [], merges: [], conflicts: [], newIdentifiers: [], movedIdentifiers: [], events: [] },
  };
  for (const [id, p] of snapshot.profiles) {
    w.profiles.set(id, p.state);
    w.identifiersOf.set(id, new Map(p.identifiers.map((i) => [idKey(i), i])));
  }
  for (const [i, e] of events.entries()) {
    const conflictsBefore = w.plan.conflicts.length;
    resolveOne(w, e, facts[i], newProfileId);
    const profileId = w.plan.events[w.plan.events.length - 1].profileId;
    for (let i = conflictsBefore; i < w.plan.conflicts.length; i++) w.plan.conflicts[i].profileId = profileId;
  }
  const plan = w.plan;
  for (const ev of plan.events) ev.profileId = live(w, ev.profileId);
  // A survivor created in this batch may itself have been absorbed later: the store must move the
  // earlier absorbed profile's rows to the final survivor, which is the one it writes.
  for (const m of plan.merges) m.survivorId = live(w, m.survivorId);
  for (const c of plan.conflicts) {
    c.profileId = live(w, c.profileId);
    c.otherProfileId = live(w, c.otherProfileId);
  }
  // A later alias in the same batch may have joined the two sides of a refused link.
  plan.conflicts = plan.conflicts.filter((c) => c.profileId !== c.otherProfileId);
  for (const id of w.dirty) {
    const state = w.profiles.get(id);
    if (state) plan.profiles.push({ state, isNew: w.created.has(id) });
  }
  for (const identifier of w.newIds.values()) plan.newIdentifiers.push({ identifier, profileId: w.owners.get(idKey(identifier))! });
  for (const identifier of w.moved.values()) plan.movedIdentifiers.push({ identifier, profileId: w.owners.get(idKey(identifier))! });
  return plan;
}
