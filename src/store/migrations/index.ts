import type { Migration, MigrationProvider } from 'kysely';
import type { Dialect } from '../db.js';
import { foundation } from './0001_foundation.js';
import { journeys } from './0002_journeys.js';
import { gate } from './0003_gate.js';
import { historyIndex } from './0004_history_index.js';
import { identifierIndex } from './0005_identifier_index.js';
import { dueOrder } from './0006_due_order.js';
import { sparseFallbackIndex } from './0007_sparse_fallback_index.js';
import { runUpdatesInPlace } from './0008_run_updates_in_place.js';
import { runHistory } from './0009_run_history.js';
import { sparseProfileIndexes } from './0010_sparse_profile_indexes.js';
import { byteOrderKeys } from './0011_byte_order_keys.js';
import { journeyExits } from './0012_journey_exits.js';
import { waitsByCustomer } from './0013_waits_by_customer.js';

// Migrations live in code (not files read at run time) so the compiled package carries them.
export function migrations(dialect: Dialect): MigrationProvider {
  const all: Record<string, Migration> = {
    '0001_foundation': foundation(dialect),
    '0002_journeys': journeys(dialect),
    '0003_gate': gate(),
    '0004_history_index': historyIndex(),
    '0005_identifier_index': identifierIndex(),
    '0006_due_order': dueOrder(),
    '0007_sparse_fallback_index': sparseFallbackIndex(),
    '0008_run_updates_in_place': runUpdatesInPlace(dialect),
    '0009_run_history': runHistory(dialect),
    '0010_sparse_profile_indexes': sparseProfileIndexes(),
    '0011_byte_order_keys': byteOrderKeys(dialect),
    '0012_journey_exits': journeyExits(dialect),
    '0013_waits_by_customer': waitsByCustomer(),
  };
  return { getMigrations: async () => all };
}
