import fs from 'node:fs';
import path from 'node:path';
import { parseJourneyText, stepOrder, type SpecResult } from '../core/journey-spec.js';
import { ConfigError } from '../config.js';

// `chorus journeys validate|apply`: journeys live in git as YAML or JSON files.

function read(file: string): { text: string; result: SpecResult } {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read ${file}: ${(err as Error).message}`);
  }
  const format = path.extname(file).toLowerCase() === '.json' ? 'json' : 'yaml';
  return { text, result: parseJourneyText(text, format) };
}

function validate(files: string[]): void {
  let bad = 0;
  for (const file of files) {
    const { result } = read(file);
    if (result.ok) {
      process.stdout.write(`${file}: ok: journey "${result.spec.key}" with steps ${stepOrder(result.spec).join(' → ')}\n`);
    } else {
      bad++;
      for (const e of result.errors) process.stdout.write(`${file}: ${e.path ? `${e.path}: ` : ''}${e.message}\n`);
    }
  }
  if (bad > 0) process.exitCode = 1;
}

async function apply(files: string[]): Promise<void> {
  const base = (process.env.CHORUS_URL || 'http://localhost:8080').replace(/\/$/, '');
  const secret = process.env.CHORUS_SECRET_KEY;
  if (!secret) throw new ConfigError('set CHORUS_SECRET_KEY to the workspace secret key (printed by chorus start)');
  for (const file of files) {
    const { text, result } = read(file);
    if (!result.ok) {
      for (const e of result.errors) process.stdout.write(`${file}: ${e.path ? `${e.path}: ` : ''}${e.message}\n`);
      process.exitCode = 1;
      continue;
    }
    const key = result.spec.key;
    const headers = { authorization: `Bearer ${secret}`, 'content-type': 'application/yaml' };
    let res = await fetch(`${base}/v1/journeys/${encodeURIComponent(key)}`, { method: 'PUT', headers, body: text });
    if (res.status === 404) res = await fetch(`${base}/v1/journeys`, { method: 'POST', headers, body: text });
    if (!res.ok) throw new Error(`${file}: saving journey "${key}" failed: ${res.status} ${await res.text()}`);
    const pub = await fetch(`${base}/v1/journeys/${encodeURIComponent(key)}/publish`, { method: 'POST', headers: { authorization: `Bearer ${secret}` } });
    if (!pub.ok) throw new Error(`${file}: publishing "${key}" failed: ${pub.status} ${await pub.text()}`);
    const body = (await pub.json()) as { version: number; published: boolean };
    process.stdout.write(`${file}: journey "${key}" ${body.published ? `published as version ${body.version}` : `unchanged (version ${body.version})`}\n`);
  }
}

export async function journeysCommand(sub: string | undefined, files: string[]): Promise<void> {
  if ((sub !== 'validate' && sub !== 'apply') || files.length === 0) {
    throw new ConfigError('usage: chorus journeys validate FILE… | chorus journeys apply FILE…');
  }
  if (sub === 'validate') validate(files);
  else await apply(files);
}

/** `chorus settings apply FILE`: the workspace's gate settings, kept in git like journeys. */
export async function settingsCommand(sub: string | undefined, files: string[]): Promise<void> {
  if (sub !== 'apply' && sub !== 'validate') throw new ConfigError('usage: chorus settings validate FILE | chorus settings apply FILE');
  const file = files[0];
  if (!file) throw new ConfigError(`usage: chorus settings ${sub} FILE`);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read ${file}: ${(err as Error).message}`);
  }
  const { parseSettingsText } = await import('../core/gate/settings.js');
  const parsed = parseSettingsText(text);
  if (!parsed.ok) {
    for (const e of parsed.errors) process.stdout.write(`${file}: ${e.path ? `${e.path}: ` : ''}${e.message}\n`);
    process.exitCode = 1;
    return;
  }
  if (sub === 'validate') {
    process.stdout.write(`${file}: ok: ${parsed.settings.caps.length} caps, ${parsed.settings.suppression.length} suppression rules\n`);
    return;
  }
  const base = (process.env.CHORUS_URL || 'http://localhost:8080').replace(/\/$/, '');
  const secret = process.env.CHORUS_SECRET_KEY;
  if (!secret) throw new ConfigError('set CHORUS_SECRET_KEY to the workspace secret key (printed by chorus start)');
  const res = await fetch(`${base}/v1/settings`, { method: 'PUT', headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/yaml' }, body: text });
  if (!res.ok) throw new Error(`${file}: applying settings failed: ${res.status} ${await res.text()}`);
  process.stdout.write(`${file}: settings applied\n`);
}
