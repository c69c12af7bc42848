import { sha256Hex } from '../lib/sha256.js';
import { holdsOutsideRun, type ConditionContext } from '../core/condition-eval.js';
import type { SentRecord } from '../core/gate/caps.js';
import { historyWindow } from '../core/gate/caps.js';
import { byPriority, decide, type Decision, type SendRequest } from '../core/gate/decide.js';
import type { EngagementStats } from '../core/gate/score.js';
import type { GateSettings, Priority, SuppressionRule } from '../core/gate/settings.js';
import type { FallbackHop, SendContent } from '../core/journey-spec.js';
import { addDuration } from '../core/time.js';
import { chooseChannel, type Category } from '../core/reach.js';
import { renderContent, type TemplateVars } from '../core/render.js';
import type { Channel } from '../core/types.js';
import type { Provider } from '../channels/provider.js';
import type { Insertable } from 'kysely';
import type { MessageTable } from '../store/schema.js';
import type { SettingsCache } from '../store/settings.js';
import { historyOf, type Db, type LoadedProfile } from './run-store.js';
import { writeAll, type Write } from '../store/insert-rows.js';
import { outboundMessage } from './outbox.js';
import { withFields } from '../core/json-text.js';
import { bucketed } from '../store/prepared.js';
import { isoTime } from '../core/iso-time.js';

// The send gate at the edge: gathers what it needs to know about a customer inside their serialized step,
// decides every waiting message of that customer in priority order, and writes each decision on its
// message. Journeys and the send API both come through here.

/** The inbound event that opens WhatsApp's 24-hour customer-service window. */
export const WHATSAPP_INBOUND_EVENT = 'WhatsApp Message Received';

export interface Outgoing {
  id: string;
  workspaceId: string;
  profile: LoadedProfile;
  run: { id: string; journeyId: string; journeyKey: string; version: number; stepId: string } | null;
  request: SendRequest;
  templates: SendContent;
  vars: TemplateVars;
  /** Journey holdout: recorded, never sent. */
  holdout: boolean;
  createdAt: number;
  source: 'journey' | 'api';
  idempotencyKey: string | null;
  /** Re-deciding a deferred message that already has a row. */
  existing: boolean;
  /** Set on an escalation hop: the message it escalates from and why it fired. */
  fallback?: { of: string; because: string };
}

/** What a held fallback hop keeps until its condition is checked. */
export interface HeldHop {
  templates: SendContent;
  vars: TemplateVars;
  request: SendRequest;
  hop: { when: FallbackHop['when']; after?: string; of: string };
}

export interface Recorded {
  id: string;
  status: string;
  decision: Decision | { outcome: 'suppress' | 'fail'; rule: string; reason: string };
}

/** Message id for the send API: derived from the idempotency key when there is one. */
export function apiMessageId(workspaceId: string, idempotencyKey: string | null, fallback: string): string {
  if (idempotencyKey === null) return fallback;
  return `msg_${sha256Hex(`api\u0000${workspaceId}\u0000${idempotencyKey}`).slice(0, 32)}`;
}

const workspaceStatsCache = new Map<string, { at: number; stats: Partial<Record<Channel, EngagementStats>> }>();
const workspaceStatsInFlight = new Map<string, Promise<Partial<Record<Channel, EngagementStats>>>>();

export class Gate {
  /** `providers`: when given, messages for a provider in the database are delivered as they are recorded. */
  constructor(
    readonly settings: SettingsCache,
    private readonly providers?: (channel: Channel) => Provider,
  ) {}

  /** Decides and records every message in `items` (they may belong to several customers). */
  async record(db: Db, items: Outgoing[], now: Date): Promise<Recorded[]> {
    const out: Recorded[] = [];
    const byProfile = new Map<string, Outgoing[]>();
    for (const i of items) {
      const group = byProfile.get(i.profile.state.id);
      if (group) group.push(i);
      else byProfile.set(i.profile.state.id, [i]);
    }
    // New ledger rows are written together at the end: nothing below reads another customer's new rows.
    const writes: Writes = { inserts: [], updates: [] };
    const windows = await whatsappWindows(db, items.filter((i) => i.request.contentChannels.includes('whatsapp')), now);
    for (const group of byProfile.values()) out.push(...(await this.recordCustomer(db, group, now, writes, windows)));
    const { inserts, updates } = writes;
    // Deliveries to a provider in the database may add rows here, to go with the messages' (the sandbox adds
    // none: the message row, stored `sent`, is its record).
    const captures: Write[] = [];
    if (this.providers) await deliverInDatabase(db, writes, this.providers, now, captures);
    // New rows, and the new outcome of messages that already had a row (deferred, held: PostgreSQL updates
    // those columns; SQLite upserts, the insert never happening), in one statement on PostgreSQL.
    await writeAll(db, [
      ...captures,
      { kind: 'insert', table: 'messages', rows: inserts, conflict: { column: 'id' } },
      { kind: 'update', table: 'messages', key: 'id', columns: OUTCOME_COLUMNS, rows: updates },
    ]);
    return out;
  }

  private async recordCustomer(db: Db, items: Outgoing[], now: Date, writes: Writes, whatsappOpen: Set<string>): Promise<Recorded[]> {
    const write = (item: Outgoing, o: Outcome, at: Date) => writeMessage(item, o, at, writes);
    const { workspaceId, profile } = items[0];
    const settings = await this.settings.get(db, workspaceId);
    const zone = profile.state.timezone ?? settings.timezone;
    const history = await sentHistory(db, profile.state.id, settings, now, items.filter((i) => i.existing).map((i) => i.id));
    const needsFacts = items.some((i) => !i.holdout);
    const suppressedBy = needsFacts ? await holdingRules(db, workspaceId, profile, settings.suppression, now) : [];
    const anyAuto = items.some((i) => i.request.channel === 'auto');
    const engagement = anyAuto
      ? { customer: await customerStats(db, profile.state.id), workspace: await workspaceStats(db, workspaceId, now) }
      : { customer: {}, workspace: {} };
    const mayWhatsapp = items.some((i) => i.request.contentChannels.includes('whatsapp'));
    const whatsappWindowOpen = mayWhatsapp && whatsappOpen.has(profile.state.id);

    const ordered = items
      .map((item) => ({ item, priority: item.request.priority, createdAt: item.createdAt, id: item.id }))
      .sort(byPriority)
      .map((k) => k.item);
    const out: Recorded[] = [];
    for (const item of ordered) {
      if (item.holdout) {
        const reason = 'holdout: this customer is in the journey holdout group';
        write(item, { status: 'suppressed', channel: null, address: null, provider: null, content: null, notBefore: null, reason, decision: { outcome: 'suppress', rule: 'holdout', reason } }, now);
        out.push({ id: item.id, status: 'suppressed', decision: { outcome: 'suppress', rule: 'holdout', reason } });
        continue;
      }
      const decision = decide(item.request, { now, zone, profile: profile.state, hasUserId: profile.hasUserId, settings, history, engagement, whatsappWindowOpen, suppressedBy });
      if (decision.outcome === 'send' && decision.channel) {
        const rendered = renderContent(item.templates[decision.channel] as Record<string, unknown>, item.vars);
        if (!rendered.ok) {
          const failed = { outcome: 'fail' as const, rule: 'template', reason: rendered.reason };
          write(item, { status: 'failed', channel: decision.channel, address: decision.address, provider: decision.provider, content: null, notBefore: null, reason: rendered.reason, decision: { ...decision, ...failed } }, now);
          out.push({ id: item.id, status: 'failed', decision: failed });
          continue;
        }
        history.push({ at: now, channel: decision.channel, category: item.request.category, tags: item.request.tags });
        write(item, { status: 'queued', channel: decision.channel, address: decision.address, provider: decision.provider, content: rendered.value, notBefore: null, reason: decision.reason, decision }, now);
        holdNextHop(item, now, writes.inserts);
        out.push({ id: item.id, status: 'queued', decision });
      } else if (decision.outcome === 'defer') {
        write(item, { status: 'deferred', channel: null, address: null, provider: null, content: null, notBefore: decision.deferUntil, reason: decision.reason, decision }, now);
        out.push({ id: item.id, status: 'deferred', decision });
      } else {
        write(item, { status: 'suppressed', channel: null, address: null, provider: null, content: null, notBefore: null, reason: decision.reason, decision }, now);
        out.push({ id: item.id, status: 'suppressed', decision });
      }
    }
    return out;
  }
}

interface Outcome {
  status: string;
  channel: Channel | null;
  address: string | null;
  provider: string | null;
  content: Record<string, unknown> | null;
  notBefore: Date | null;
  reason: string;
  decision: unknown;
}

/**
 * A new message row's columns from its request and where it was sent from, with every other column at its
 * empty value: rows of one multi-row insert must name the same columns (SQLite has no DEFAULT in VALUES).
 */
function originOf(item: Outgoing) {
  return {
    workspace_id: item.workspaceId,
    profile_id: item.profile.state.id,
    run_id: item.run?.id ?? null,
    journey_id: item.run?.journeyId ?? null,
    journey_key: item.run?.journeyKey ?? null,
    version: item.run?.version ?? null,
    step: item.run?.stepId ?? null,
    category: item.request.category,
    priority: item.request.priority,
    tags: JSON.stringify(item.request.tags),
    topic: item.request.topic ?? null,
    message_type: item.request.type ?? null,
    override_caps: item.request.overrideCaps ? 1 : 0,
    source: item.source,
    sent_at: null,
    lease_until: null,
    provider_message_id: null,
    provider: null,
    to_address: null,
    content: null,
    decision: null,
    queued_at: null,
    fallback_of: null,
    pending: null,
    not_before: null,
    attempts: 0,
  };
}

/**
 * After a message goes out, its next escalation hop waits as a `held` message: until `after` for
 * delivery and engagement conditions, or until the message fails for `failed`.
 */
function holdNextHop(item: Outgoing, now: Date, inserts: Insertable<MessageTable>[]): void {
  const [hop, ...rest] = item.request.fallback;
  if (!hop) return;
  const at = now.getTime();
  const held: HeldHop = {
    templates: item.templates,
    vars: item.vars,
    request: { ...item.request, channel: hop.channel, fallback: rest },
    hop: { when: hop.when, ...(hop.after !== undefined && { after: hop.after }), of: item.id },
  };
  const notBefore = hop.when === 'failed' || hop.after === undefined ? null : addDuration(now, hop.after).getTime();
  const why = hop.when === 'failed' ? `if ${item.id} fails` : `if ${item.id} is ${hop.when.replace('_', ' ')} by ${new Date(notBefore ?? at).toISOString()}`;
  inserts.push(
    Object.assign(originOf(item), {
      id: `${item.id}.${item.request.fallback.length}`,
      idempotency_key: null,
      status: 'held',
      channel: hop.channel,
      reason: `fallback to ${hop.channel} ${why}`,
      not_before: notBefore,
      pending: JSON.stringify(held),
      fallback_of: item.id,
      created_at: at,
      updated_at: at,
    }),
  );
}

/** The columns a gate decision (and a delivery in the database) sets on a message that already has a row. */
const OUTCOME_COLUMNS = [
  'status',
  'channel',
  'provider',
  'to_address',
  'content',
  'reason',
  'decision',
  'not_before',
  'queued_at',
  'pending',
  'updated_at',
  'sent_at',
  'provider_message_id',
  'attempts',
  'lease_until',
];

/**
 * Journey messages queued for a provider that lives in the database (the sandbox) are delivered in the
 * gate's own transaction and stored `sent`: the outbox would only claim them again to do the same write.
 * Their "if it fails" escalations are cancelled, as the outbox does when a message is sent.
 */
async function deliverInDatabase(db: Db, writes: Writes, providers: (channel: Channel) => Provider, now: Date, captures: Write[]): Promise<void> {
  const at = now.getTime();
  const byProvider = new Map<Provider, Insertable<MessageTable>[]>();
  for (const row of [...writes.inserts, ...writes.updates]) {
    // API sends answer with the gate's decision (`queued`) and go out through the outbox.
    if (row.status !== 'queued' || !row.channel || row.source !== 'journey') continue;
    const provider = providers(row.channel as Channel);
    if (!provider.deliverInTransaction) continue;
    const list = byProvider.get(provider);
    if (list) list.push(row);
    else byProvider.set(provider, [row]);
  }
  const sent = new Set<string>();
  for (const [provider, rows] of byProvider) {
    const results = await provider.deliverInTransaction!(db, rows.map(outboundMessage), captures);
    rows.forEach((r, n) => {
      Object.assign(r, { status: 'sent', provider: provider.name, provider_message_id: results[n].providerMessageId, sent_at: at, attempts: 1, lease_until: null });
      sent.add(r.id);
    });
  }
  if (sent.size === 0) return;
  for (const row of writes.inserts) {
    if (row.status === 'held' && row.not_before === null && row.fallback_of && sent.has(row.fallback_of)) {
      Object.assign(row, { status: 'cancelled', reason: 'the message it escalates from was sent', pending: null });
    }
  }
}

/** New ledger rows, and the new outcome of messages that already have a row, written at the end of `record`. */
interface Writes {
  inserts: Insertable<MessageTable>[];
  updates: Insertable<MessageTable>[];
}

function writeMessage(item: Outgoing, o: Outcome, now: Date, writes: Writes): void {
  const at = now.getTime();
  const decidedAt = isoTime(now.getTime());
  const decision = withFields(JSON.stringify(o.decision), item.fallback ? { fallbackOf: item.fallback.of, fallbackBecause: item.fallback.because, decidedAt } : { decidedAt });
  const pending = o.status === 'deferred' ? JSON.stringify({ templates: item.templates, vars: item.vars, request: item.request }) : null;
  const common = {
    status: o.status,
    channel: o.channel,
    provider: o.provider,
    to_address: o.address,
    content: o.content ? JSON.stringify(o.content) : null,
    reason: o.reason,
    decision,
    not_before: o.notBefore ? o.notBefore.getTime() : null,
    queued_at: o.status === 'queued' ? at : null,
    pending,
    updated_at: at,
  };
  // Built by assignment: spreading ~30 columns and then adding keys is ~20x slower in V8 (Node 20), and this
  // runs once per message.
  (item.existing ? writes.updates : writes.inserts).push(Object.assign(originOf(item), { id: item.id, idempotency_key: item.idempotencyKey, created_at: at }, common));
}

/**
 * WhatsApp's customer-service window: open for 24 hours after the customer last wrote, either an inbound
 * message event or a reply reported on one of our WhatsApp messages.
 */
async function whatsappWindows(db: Db, items: Outgoing[], now: Date): Promise<Set<string>> {
  const open = new Set<string>();
  const byWorkspace = new Map<string, Set<string>>();
  for (const i of items) byWorkspace.set(i.workspaceId, (byWorkspace.get(i.workspaceId) ?? new Set()).add(i.profile.state.id));
  for (const [workspaceId, profiles] of byWorkspace) {
    const ids = [...profiles];
    // One query for the batch's customers instead of one per customer.
    for (let i = 0; i < ids.length; i += 500) {
      const rows = await db
        .selectFrom('events')
        .select(['profile_id', 'name', 'payload'])
        .where('workspace_id', '=', workspaceId)
        .where('profile_id', 'in', bucketed(ids.slice(i, i + 500)))
        .where('name', 'in', [WHATSAPP_INBOUND_EVENT, 'Message Replied'])
        .where('timestamp', '>=', now.getTime() - 24 * 3600_000)
        .where('type', '=', 'track')
        .execute();
      for (const r of rows) {
        if (r.name === WHATSAPP_INBOUND_EVENT || (JSON.parse(r.payload) as { properties?: { channel?: unknown } }).properties?.channel === 'whatsapp') open.add(r.profile_id);
      }
    }
  }
  return open;
}

/** Messages that count against caps: queued, being sent or sent, within the longest cap window. */
async function sentHistory(db: Db, profileId: string, settings: GateSettings, now: Date, exclude: string[]): Promise<SentRecord[]> {
  if (settings.caps.length === 0) return [];
  let q = db
    .selectFrom('messages')
    .select(['id', 'queued_at', 'channel', 'category', 'tags'])
    .where('profile_id', '=', profileId)
    .where('status', 'in', ['queued', 'sending', 'retrying', 'sent', 'delivered', 'opened', 'clicked', 'replied'])
    .where('queued_at', '>=', historyWindow(settings.caps, now).getTime());
  if (exclude.length > 0) q = q.where('id', 'not in', exclude);
  const rows = await q.execute();
  return rows
    .filter((r) => r.channel !== null)
    .map((r) => ({ at: new Date(r.queued_at ?? 0), channel: r.channel as Channel, category: r.category as Category, tags: JSON.parse(r.tags) as string[] }));
}

async function holdingRules(db: Db, workspaceId: string, profile: LoadedProfile, rules: SuppressionRule[], now: Date): Promise<SuppressionRule[]> {
  if (rules.length === 0) return [];
  const ctx: ConditionContext = {
    now,
    profile: profile.state,
    history: historyOf(db, workspaceId, profile.state.id),
    reachable: (channel) => chooseChannel([channel], profile.state, profile.hasUserId, 'promotional').ok,
  };
  const out: SuppressionRule[] = [];
  for (const r of rules) if (await holdsOutsideRun(r.when, ctx)) out.push(r);
  return out;
}

const DELIVERED = ['delivered', 'opened', 'clicked', 'replied'];
const ENGAGED = ['opened', 'clicked', 'replied'];

async function customerStats(db: Db, profileId: string): Promise<Partial<Record<Channel, EngagementStats>>> {
  const rows = await db.selectFrom('messages').select(['channel', 'status']).where('profile_id', '=', profileId).where('status', 'in', DELIVERED).execute();
  return tally(rows);
}

/** The workspace's rates, recomputed at most once a minute; concurrent callers share one query. */
function workspaceStats(db: Db, workspaceId: string, now: Date): Promise<Partial<Record<Channel, EngagementStats>>> {
  const hit = workspaceStatsCache.get(workspaceId);
  if (hit && now.getTime() - hit.at < 60_000 && now.getTime() >= hit.at) return Promise.resolve(hit.stats);
  let pending = workspaceStatsInFlight.get(workspaceId);
  if (!pending) {
    pending = queryWorkspaceStats(db, workspaceId, now).finally(() => workspaceStatsInFlight.delete(workspaceId));
    workspaceStatsInFlight.set(workspaceId, pending);
  }
  return pending;
}

async function queryWorkspaceStats(db: Db, workspaceId: string, now: Date): Promise<Partial<Record<Channel, EngagementStats>>> {
  const rows = await db
    .selectFrom('messages')
    .select((eb) => ['channel', 'status', eb.fn.countAll<number>().as('n')])
    .where('workspace_id', '=', workspaceId)
    .where('status', 'in', DELIVERED)
    .groupBy(['channel', 'status'])
    .execute();
  const stats: Partial<Record<Channel, EngagementStats>> = {};
  for (const r of rows) {
    if (!r.channel) continue;
    const c = (stats[r.channel as Channel] ??= { delivered: 0, engaged: 0 });
    c.delivered += Number(r.n);
    if (ENGAGED.includes(r.status)) c.engaged += Number(r.n);
  }
  workspaceStatsCache.set(workspaceId, { at: now.getTime(), stats });
  return stats;
}

function tally(rows: { channel: string | null; status: string }[]): Partial<Record<Channel, EngagementStats>> {
  const stats: Partial<Record<Channel, EngagementStats>> = {};
  for (const r of rows) {
    if (!r.channel) continue;
    const c = (stats[r.channel as Channel] ??= { delivered: 0, engaged: 0 });
    c.delivered++;
    if (ENGAGED.includes(r.status)) c.engaged++;
  }
  return stats;
}

export type { Priority };
