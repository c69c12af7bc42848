import type { Generated } from 'kysely';

// Table types for Kysely. Times are epoch milliseconds (bigint on PostgreSQL, integer on SQLite);
// JSON documents are stored as text in both dialects so one code path reads them.

export interface WorkspaceTable {
  id: string;
  name: string;
  created_at: number;
}

export interface ApiKeyTable {
  id: string;
  workspace_id: string;
  kind: 'write' | 'secret';
  /** SHA-256 of the key, hex. Keys are 160-bit random, so a fast hash is safe here. */
  key_hash: string;
  /** First characters of the key, so an operator can tell keys apart. */
  hint: string;
  created_at: number;
  revoked_at: number | null;
}

export interface ProfileTable {
  id: string;
  workspace_id: string;
  /** Set when this profile was merged into another; the row stays so the old id still resolves. */
  merged_into: string | null;
  traits: string;
  field_times: string;
  contact_points: string;
  consent: string;
  timezone: string | null;
  locale: string | null;
  preferred_channel: string | null;
  created_at: number;
  updated_at: number;
}

export interface IdentifierTable {
  workspace_id: string;
  kind: string;
  value: string;
  profile_id: string;
  created_at: number;
}

export interface EventTable {
  id: string;
  workspace_id: string;
  message_id: string;
  profile_id: string;
  type: string;
  name: string | null;
  user_id: string | null;
  anonymous_id: string | null;
  timestamp: number;
  received_at: number;
  /** The normalized call (properties, traits, context and the rest of the payload). */
  payload: string;
}

export interface IdentityLogTable {
  id: Generated<number>;
  workspace_id: string;
  /** merge: the survivor; conflict: the profile the event went to. */
  profile_id: string;
  /** merge: the absorbed profile; conflict: the profile that kept the identifier. */
  other_profile_id: string;
  kind: 'merge' | 'conflict';
  reason: string;
  identifier_kind: string | null;
  identifier_value: string | null;
  message_id: string | null;
  created_at: number;
}

export interface Database {
  workspaces: WorkspaceTable;
  api_keys: ApiKeyTable;
  profiles: ProfileTable;
  identifiers: IdentifierTable;
  events: EventTable;
  identity_log: IdentityLogTable;
  journeys: JourneyTable;
  journey_versions: JourneyVersionTable;
  journey_exits: JourneyExitTable;
  runs: RunTable;
  run_history: RunHistoryTable;
  waits: WaitTable;
  messages: MessageTable;
  sandbox_messages: SandboxMessageTable;
  clock: ClockTable;
  workspace_settings: WorkspaceSettingsTable;
}

export interface JourneyTable {
  id: string;
  workspace_id: string;
  key: string;
  name: string;
  /** draft (never published) | active | paused | archived */
  status: string;
  draft_spec: string;
  latest_version: number | null;
  created_at: number;
  updated_at: number;
}

export interface JourneyVersionTable {
  journey_id: string;
  version: number;
  workspace_id: string;
  spec: string;
  published_at: number;
}

/** Which published versions end a run at once on an event (their `exit_when` rules), by event name. */
export interface JourneyExitTable {
  workspace_id: string;
  event_name: string;
  journey_id: string;
  version: number;
}

export interface RunTable {
  id: string;
  workspace_id: string;
  journey_id: string;
  journey_key: string;
  version: number;
  profile_id: string;
  /** active | waiting | converted | exited | completed */
  status: string;
  entry_key: string | null;
  holdout: number;
  entered_at: number;
  goal_deadline: number | null;
  converted_at: number | null;
  ended_at: number | null;
  end_reason: string | null;
  /** The event that started the run: { name, properties, timestamp, messageId }. */
  trigger: string;
  /** How many times each step was entered, as JSON { step: count }; numbers message attempts. */
  visits: string;
  updated_at: number;
}

/**
 * A run's history: one row per run and transaction, its steps in order as a JSON array of
 * `[step, type, at, outcome, detail]` (`at` in epoch milliseconds, `detail` an object or null).
 */
export interface RunHistoryTable {
  id: Generated<number>;
  workspace_id: string;
  run_id: string;
  steps: string;
  step_count: number;
}

/** What a run is waiting on: a timer, an event (with an optional timeout), its goal or an exit event. */
export interface WaitTable {
  id: string;
  workspace_id: string;
  run_id: string;
  journey_id: string;
  profile_id: string;
  step: string;
  /** wait | wait_for | goal (exit rules are the version's: journey_exits) */
  kind: string;
  event_name: string | null;
  due_at: number | null;
  created_at: number;
}

export interface MessageTable {
  id: string;
  workspace_id: string;
  profile_id: string;
  run_id: string | null;
  journey_id: string | null;
  journey_key: string | null;
  version: number | null;
  step: string | null;
  category: string;
  channel: string | null;
  provider: string | null;
  /** queued | sending | sent | failed | suppressed */
  status: string;
  reason: string | null;
  to_address: string | null;
  content: string | null;
  created_at: number;
  sent_at: number | null;
  updated_at: number;
  lease_until: number | null;
  provider_message_id: string | null;
  /** low | normal | high | urgent */
  priority: Generated<string>;
  /** JSON array of tags, for caps per tag. */
  tags: Generated<string>;
  topic: string | null;
  message_type: string | null;
  /** Deferred until this time; the gate decides again then. */
  not_before: number | null;
  /** The gate's decision and trace, JSON. */
  decision: string | null;
  override_caps: Generated<number>;
  idempotency_key: string | null;
  /** journey | api */
  source: Generated<string>;
  attempts: Generated<number>;
  /** When the gate decided to send it (caps count this time). */
  queued_at: number | null;
  /** Fallback hops: the message this one escalates from. */
  fallback_of: string | null;
  /** Deferred messages: { templates, vars } to render when released. */
  pending: string | null;
}

export interface WorkspaceSettingsTable {
  workspace_id: string;
  settings: string;
  updated_at: number;
}

export interface SandboxMessageTable {
  message_id: string;
  workspace_id: string;
  channel: string;
  to_address: string;
  content: string;
  captured_at: number;
}

export interface ClockTable {
  id: string;
  now_ms: number;
}
