#!/usr/bin/env -S node --max-semi-space-size=128
// A 128 MB young generation: the engine allocates many short-lived rows per batch, and with the default
// 16 MB scavenges cost ~7% of server CPU (bench:journeys). On PostgreSQL a transaction's rows outlive a
// 64 MB one while it waits on the database, get promoted and cost old-generation collections: 128 MB
// halved the main thread's GC time there (3.2 → 1.6 s per bench run) for ~90 MB more RSS. V8 reads it
// only at start-up.
// Runs the compiled CLI (`npm run build` produces dist/).
import '../dist/cli/main.js';
