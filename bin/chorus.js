#!/usr/bin/env -S node --max-semi-space-size=64
// A 64 MB young generation: the engine allocates many short-lived rows per batch, and with the default
// 16 MB, scavenges cost ~7% of server CPU (bench:journeys). V8 reads it only at start-up.
// Runs the compiled CLI (`npm run build` produces dist/).
import '../dist/cli/main.js';
