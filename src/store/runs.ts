import type { Kysely } from 'kysely';
import type { Database } from './schema.js';

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
  steps: { step: string; type: string; at: string; outcome: string; detail: unknown }[];
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export async function runsOfProfile(db: Kysely<Database>, workspaceId: string, profileId: string): Promise<RunView[]> {
  const runs = await db.selectFrom('runs').selectAll().where('workspace_id', '=', workspaceId).where('profile_id', '=', profileId).orderBy('entered_at', 'desc').execute();
  if (runs.length === 0) return [];
  const ids = runs.map((r) => r.id);
  const steps = await db.selectFrom('run_steps').selectAll().where('run_id', 'in', ids).orderBy('id').execute();
  const waits = await db.selectFrom('waits').selectAll().where('run_id', 'in', ids).where('kind', 'in', ['wait', 'wait_for']).execute();
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
    steps: steps
      .filter((s) => s.run_id === r.id)
      .map((s) => ({ step: s.step, type: s.type, at: new Date(s.at).toISOString(), outcome: s.outcome, detail: s.detail ? (JSON.parse(s.detail) as unknown) : null })),
  }));
}
