import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

// One registry per app instance so tests can build several apps in one process.
export interface Metrics {
  registry: Registry;
  httpDuration: Histogram<'method' | 'route' | 'status'>;
  eventsIngested: Counter<'type'>;
  eventsDuplicate: Counter;
  identityMerges: Counter;
  identityConflicts: Counter;
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'chorus_' });
  return {
    registry,
    httpDuration: new Histogram({
      name: 'chorus_http_request_duration_seconds',
      help: 'HTTP request duration by route and status',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
    eventsIngested: new Counter({ name: 'chorus_events_ingested_total', help: 'Events stored, by type', labelNames: ['type'], registers: [registry] }),
    eventsDuplicate: new Counter({ name: 'chorus_events_duplicate_total', help: 'Events skipped because their messageId was already stored', registers: [registry] }),
    identityMerges: new Counter({ name: 'chorus_identity_merges_total', help: 'Profiles merged into another', registers: [registry] }),
    identityConflicts: new Counter({ name: 'chorus_identity_conflicts_total', help: 'Identity links refused (two user_ids)', registers: [registry] }),
  };
}
