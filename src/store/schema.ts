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
}
