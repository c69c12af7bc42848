import type { Channel, ContactPoints, Consent, IdentifierKind, ProfileState } from '../core/types.js';
import type { ProfileTable } from './schema.js';
import { isoTime, parseIsoTime } from '../core/iso-time.js';

// Conversions between database rows and domain objects.

export const iso = (ms: number): string => isoTime(ms);
export const ms = (text: string): number => parseIsoTime(text);

/** A profile row; without `field_times` when read for decisions only (see loadProfiles). */
export type ProfileRow = Omit<ProfileTable, 'field_times'> & { field_times?: string };

export function profileFromRow(r: ProfileRow): ProfileState {
  const state = {
    id: r.id,
    traits: JSON.parse(r.traits) as Record<string, unknown>,
    fieldTimes: {} as Record<string, string>,
    contactPoints: JSON.parse(r.contact_points) as ContactPoints,
    consent: JSON.parse(r.consent) as Consent,
    timezone: r.timezone,
    locale: r.locale,
    preferredChannel: r.preferred_channel as Channel | null,
    createdAt: iso(r.created_at),
    updatedAt: iso(r.updated_at),
  };
  // The times of each field are only needed to change the profile (newer wins), which most reads never
  // do (the engine reads a batch's customers to decide their next steps): parse them on first use. An
  // ordinary enumerable property to every reader (spread, JSON, equality), just filled in late.
  let times: Record<string, string> | undefined;
  Object.defineProperty(state, 'fieldTimes', {
    enumerable: true,
    configurable: true,
    get: () => (times ??= fieldTimesOf(r)),
    set: (v: Record<string, string>) => {
      times = v;
    },
  });
  return state;
}

function fieldTimesOf(r: ProfileRow): Record<string, string> {
  if (r.field_times === undefined) {
    throw new Error(`profile ${r.id} was read without its field times, which changing it needs: read them first (loadFieldTimes)`);
  }
  return JSON.parse(r.field_times) as Record<string, string>;
}

export function profileToRow(p: ProfileState, workspaceId: string): ProfileTable {
  return {
    id: p.id,
    workspace_id: workspaceId,
    merged_into: null,
    traits: JSON.stringify(p.traits),
    field_times: JSON.stringify(p.fieldTimes),
    contact_points: JSON.stringify(p.contactPoints),
    consent: JSON.stringify(p.consent),
    timezone: p.timezone,
    locale: p.locale,
    preferred_channel: p.preferredChannel,
    created_at: ms(p.createdAt),
    updated_at: ms(p.updatedAt),
  };
}

export function asKind(kind: string): IdentifierKind {
  return kind as IdentifierKind;
}

/** Splits rows into chunks so one statement stays under both dialects' bound-parameter limits. */
export function chunks<T>(rows: T[], columns: number, maxParams = 30_000): T[][] {
  const size = Math.max(1, Math.floor(maxParams / columns));
  const out: T[][] = [];
  for (let i = 0; i < rows.length; i += size) out.push(rows.slice(i, i + size));
  return out;
}
