import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { parseDuration } from '../../core/time.js';
import { VirtualClock, type Clock } from '../../engine/clock.js';
import type { Runtime } from '../../engine/runtime.js';
import { addDuration } from '../../core/time.js';
import { requireSecretKey, type KeyRing } from '../auth.js';
import { HttpError, invalid } from '../errors.js';

// The virtual clock: `chorus start --virtual-clock` runs weeks of journey time in seconds.

const realClock = () =>
  new HttpError(409, 'clock_is_real', 'the clock is the wall clock; start Chorus with --virtual-clock (or CHORUS_VIRTUAL_CLOCK) to move time by hand');

export function clockRoutes(app: FastifyInstance, clock: Clock, runtime: Runtime, keys: KeyRing): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const auth = requireSecretKey(keys);

  r.get('/v1/clock', {
    onRequest: auth,
    schema: { tags: ['clock'], summary: 'The engine time and whether it is virtual' },
    handler: async () => {
      if (!(clock instanceof VirtualClock)) throw realClock();
      return { now: clock.now().toISOString(), virtual: true };
    },
  });

  r.post('/v1/clock/advance', {
    onRequest: auth,
    schema: {
      tags: ['clock'],
      summary: 'Move the virtual clock forward, processing everything that falls due, in time order, before answering',
      body: z.object({ by: z.string().optional().describe('ISO 8601 duration, e.g. P3D'), to: z.string().optional().describe('ISO 8601 date-time') }).strict(),
    },
    handler: async (req) => {
      if (!(clock instanceof VirtualClock)) throw realClock();
      const { by, to } = req.body;
      if ((by === undefined) === (to === undefined)) throw invalid([{ path: by === undefined ? 'by' : 'to', message: 'give exactly one of "by" (a duration such as P3D) or "to" (a date-time)' }]);
      let target: Date;
      if (by !== undefined) {
        if (!parseDuration(by)) throw invalid([{ path: 'by', message: 'expected an ISO 8601 duration such as P3D' }]);
        try {
          target = addDuration(clock.now(), by);
        } catch (err) {
          if (!(err instanceof RangeError)) throw err;
          throw invalid([{ path: 'by', message: `${clock.now().toISOString()} plus ${by} is past the last date a clock can show (+275760-09-13T00:00:00Z)` }]);
        }
      } else {
        const ms = Date.parse(to!);
        if (Number.isNaN(ms)) throw invalid([{ path: 'to', message: 'expected an ISO 8601 date-time such as 2026-01-08T10:00:00Z' }]);
        target = new Date(ms);
        if (target.getTime() < clock.now().getTime()) throw invalid([{ path: 'to', message: `the clock never runs backwards; it is already ${clock.now().toISOString()}` }]);
      }
      const from = clock.now().toISOString();
      const now = await runtime.advance(clock, target);
      return { from, now: now.toISOString(), virtual: true };
    },
  });
}
