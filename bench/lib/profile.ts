import fs from 'node:fs';
import path from 'node:path';

// A short text summary of a V8 .cpuprofile (as written by `node --cpu-prof`): where the CPU time went,
// by function and by source file or package (self time, i.e. time spent in that code itself).

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
}

const ROOT = path.resolve(import.meta.dirname, '../..');

function place(url: string): string {
  if (url === '') return '(native / VM)';
  const file = url.replace(/^file:\/\//, '');
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(file);
  if (pkg) return `pkg:${pkg[1]}`;
  if (file.startsWith('node:')) return file;
  return path.relative(ROOT, file.replace(/\?.*$/, ''));
}

/** The main thread's profile among those `node --cpu-prof` wrote (loader threads write small ones too). */
export function mainProfile(dir: string): string | null {
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).map((f) => path.join(dir, f));
  if (files.length === 0) return null;
  return files.sort((a, b) => fs.statSync(b).size - fs.statSync(a).size)[0];
}

export function summarizeProfile(file: string, top = 20): string {
  const profile = JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile;
  const totalMs = (profile.endTime - profile.startTime) / 1000;
  const samples = profile.samples.length || 1;
  const msPerSample = totalMs / samples;
  const byFunction = new Map<string, number>();
  const byPlace = new Map<string, number>();
  let idle = 0;
  for (const node of profile.nodes) {
    const hits = node.hitCount ?? 0;
    if (hits === 0) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    if (functionName === '(idle)') {
      idle += hits;
      continue;
    }
    const where = place(url);
    const fn = `${functionName || '(anonymous)'}  ${where}${url ? `:${lineNumber + 1}` : ''}`;
    byFunction.set(fn, (byFunction.get(fn) ?? 0) + hits);
    byPlace.set(where, (byPlace.get(where) ?? 0) + hits);
  }
  const busy = samples - idle;
  const pct = (hits: number) => `${((100 * hits) / samples).toFixed(1).padStart(5)}%`;
  const lines = [
    `CPU profile ${file}`,
    `  wall ${(totalMs / 1000).toFixed(1)} s, busy ${pct(busy)}, idle ${pct(idle)} (percentages of all samples)`,
    '  self time by file or package:',
  ];
  for (const [where, hits] of [...byPlace].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    lines.push(`    ${pct(hits)}  ${((hits * msPerSample) / 1000).toFixed(2).padStart(7)} s  ${where}`);
  }
  lines.push('  self time by function:');
  for (const [fn, hits] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    lines.push(`    ${pct(hits)}  ${fn}`);
  }
  return lines.join('\n');
}
