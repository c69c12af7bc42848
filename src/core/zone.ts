// Time zones for luxon with their UTC offsets remembered. luxon asks Intl for the offset of an IANA zone
// on every DateTime it builds (a formatToParts call, ~10 µs); the engine builds several per step for quiet
// hours, calendar caps and local-time waits, and that was a tenth of its CPU time. Offsets change only at
// transitions, which the tz database puts minutes to months apart, so an offset that is the same at both
// ends of a 15-minute slot holds for the whole slot and is remembered for it; a slot with a transition
// inside is always asked afresh. The answers are exactly luxon's own.

import { IANAZone, Zone, type ZoneOffsetFormat, type ZoneOffsetOptions } from 'luxon';

const SLOT_MS = 15 * 60_000;
const MAX_SLOTS = 20_000;
const MAX_ZONES = 1_000;

class CachedZone extends Zone {
  private readonly slots = new Map<number, number>();

  constructor(private readonly inner: IANAZone) {
    super();
  }

  override get type(): string {
    return 'iana';
  }
  override get name(): string {
    return this.inner.name;
  }
  override get isUniversal(): boolean {
    return false;
  }
  override get isValid(): boolean {
    return this.inner.isValid;
  }
  override offsetName(ts: number, opts: ZoneOffsetOptions): string | null {
    return this.inner.offsetName(ts, opts);
  }
  override formatOffset(ts: number, format: ZoneOffsetFormat): string {
    return this.inner.formatOffset(ts, format);
  }
  override equals(other: Zone): boolean {
    return other.type === 'iana' && other.name === this.name;
  }

  override offset(ts: number): number {
    const slot = Math.floor(ts / SLOT_MS);
    const known = this.slots.get(slot);
    if (known !== undefined) return known;
    const start = slot * SLOT_MS;
    const first = this.inner.offset(start);
    const last = this.inner.offset(start + SLOT_MS - 1);
    if (first !== last) return this.inner.offset(ts);
    if (this.slots.size >= MAX_SLOTS) this.slots.clear();
    this.slots.set(slot, first);
    return first;
  }
}

const zones = new Map<string, Zone>();

/** The luxon zone for an IANA name (validate the name first); `UTC` stays luxon's fixed zone. */
export function zoneFor(name: string): Zone | string {
  if (name === 'UTC' || name === 'Etc/UTC') return name;
  let z = zones.get(name);
  if (!z) {
    if (zones.size >= MAX_ZONES) zones.clear();
    z = new CachedZone(IANAZone.create(name));
    zones.set(name, z);
  }
  return z;
}

/** The zone's offset from UTC in minutes at `ms`. */
export function offsetOf(ms: number, name: string): number {
  const z = zoneFor(name);
  return typeof z === 'string' ? 0 : z.offset(ms);
}
