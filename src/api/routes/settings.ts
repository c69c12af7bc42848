import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { parseSettings, parseSettingsText } from '../../core/gate/settings.js';
import type { Store } from '../../store/db.js';
import { readSettingsDocument, writeSettings, type SettingsCache } from '../../store/settings.js';
import { requireSecretKey, type KeyRing } from '../auth.js';
import { invalid } from '../errors.js';

// Workspace settings for the send gate: caps, quiet hours, suppression rules, channel rules and costs.

export function settingsRoutes(app: FastifyInstance, store: Store, keys: KeyRing, cache: SettingsCache): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const auth = requireSecretKey(keys);
  const tags = ['settings'];

  r.get('/v1/settings', {
    onRequest: auth,
    schema: { tags, summary: 'The effective gate settings (defaults merged) and the stored document' },
    handler: async (req) => {
      const document = await readSettingsDocument(store.db, req.workspaceId);
      const parsed = parseSettings(document);
      return { settings: parsed.ok ? parsed.settings : null, document, ...(parsed.ok ? {} : { errors: parsed.errors }) };
    },
  });

  r.put('/v1/settings', {
    onRequest: auth,
    schema: { tags, summary: 'Replace the gate settings (JSON, or YAML as application/yaml); see docs/gate.md' },
    handler: async (req) => {
      const parsed = typeof req.body === 'string' ? parseSettingsText(req.body) : parseSettings(req.body);
      if (!parsed.ok) throw invalid(parsed.errors, 'settings');
      const document = typeof req.body === 'string' ? (await import('yaml')).parse(req.body) as unknown : req.body;
      await writeSettings(store.db, req.workspaceId, document, Date.now());
      cache.invalidate(req.workspaceId);
      return { settings: parsed.settings, document };
    },
  });
}
