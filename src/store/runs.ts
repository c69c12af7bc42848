import type { Kysely } from 'kysely';
import type { Database } from './schema.js';
import { legacyMessageId, messageId } from '../engine/run-store.js';
import type { HistoryStep } from '../engine/run-ledger.js';
import { isoTime } from '../core/iso-time.js';

// Reading runs for the admin API.

export interface RunView {
  id: string;
  journey: { key: string; version: number };
  status: string;
  holdout: boolean;
  enteredAt: string;
  /** Steps the run is waiting in (several when paths run in parallel). */
  currentSteps: { step: string; kind: string; event: string | null; until: string | null }[];
  convertedAt: string | null;
  goalDeadline: string | null;
  endedAt: string | null;
  endReason: string | null;
  /** Send steps carry their message: the gate's outcome is the step's outcome. */
  steps: { step: string; type: string; at: string; outcome: string; detail: unknown; message?: { id: string; status: string; channel: string | null; reason: string | null } }[];
}

const iso = (ms: number | null) => (ms === null ? null : isoTime(ms));

export async function runsOfProfile(db: Kysely<Database>, workspaceId: string, profileId: string): Promise<RunView[]> {
  const runs = await db.selectFrom('runs').selectAll().where('workspace_id', '=', workspaceId).where('profile_id', '=', profileId).orderBy('entered_at', 'desc').execute();
  if (runs.length === 0) return [];
  const ids = runs.map((r) => r.id);
  const history = await db.selectFrom('run_history').select(['run_id', 'steps']).where('run_id', 'in', ids).orderBy('id').execute();
  const stepsOf = new Map<string, HistoryStep[]>(ids.map((id) => [id, []]));
  for (const h of history) stepsOf.get(h.run_id)?.push(...(JSON.parse(h.steps) as HistoryStep[]));
  const waits = await db.selectFrom('waits').selectAll().where('profile_id', '=', profileId).where('kind', 'in', ['wait', 'wait_for']).execute();
  const messages = new Map(
    (await db.selectFrom('messages').select(['id', 'status', 'channel', 'reason']).where('profile_id', '=', profileId).where('run_id', 'in', ids).execute()).map((m) => [m.id, m]),
  );
  const messageOf = (runId: string, step: string, detail: unknown) => {
    const attempt = (detail as { attempt?: number } | null)?.attempt;
    return typeof attempt === 'number' ? (messages.get(messageId(runId, step, attempt)) ?? messages.get(legacyMessageId(runId, step, attempt))) : undefined;
  };
  return runs.map((r) => ({
    id: r.id,
    journey: { key: r.journey_key, version: r.version },
    status: r.status,
    holdout: r.holdout === 1,
    enteredAt: new Date(r.entered_at).toISOString(),
    currentSteps: waits.filter((w) => w.run_id === r.id).map((w) => ({ step: w.step, kind: w.kind, event: w.event_name, until: iso(w.due_at) })),
    convertedAt: iso(r.converted_at),
    goalDeadline: iso(r.goal_deadline),
    endedAt: iso(r.ended_at),
    endReason: r.end_reason,
    steps: stepsOf.get(r.id)!.map(([step, type, at, outcome, detail]) => {
      const m = type === 'send' ? messageOf(r.id, step, detail) : undefined;
      return { step, type, at: new Date(at).toISOString(), outcome: m ? m.status : outcome, detail, ...(m ? { message: m } : {}) };
    }),
  }));
}
