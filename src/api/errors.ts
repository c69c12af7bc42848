import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';

// One error shape for every 4xx/5xx: a machine code, a sentence that says what to do, and the fields at fault.

export interface FieldError {
  path: string;
  message: string;
}

export interface ErrorBody {
  error: string;
  message: string;
  fields?: FieldError[];
}

export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly fields?: FieldError[],
  ) {
    super(message);
  }
}

export function invalid(fields: FieldError[], what = 'request'): HttpError {
  const first = fields[0];
  const summary = first ? `${first.path ? `${first.path}: ` : ''}${first.message}` : 'invalid input';
  const more = fields.length > 1 ? ` (and ${fields.length - 1} more; see fields)` : '';
  return new HttpError(400, 'invalid_request', `invalid ${what}: ${summary}${more}`, fields);
}

function validationPath(context: string | undefined, instancePath: string): string {
  const parts = instancePath.split('/').filter(Boolean);
  const field = parts.reduce((acc, p) => (/^\d+$/.test(p) ? `${acc}[${p}]` : acc ? `${acc}.${p}` : p), '');
  if (context === 'body' || context === undefined) return field;
  return field ? `${context === 'querystring' ? 'query' : context}.${field}` : context;
}

export function errorHandler(err: FastifyError, req: FastifyRequest, reply: FastifyReply): void {
  if (err instanceof HttpError) {
    void reply.code(err.statusCode).send(body(err.code, err.message, err.fields));
    return;
  }
  if (hasZodFastifySchemaValidationErrors(err)) {
    const fields = err.validation.map((v) => ({ path: validationPath(err.validationContext, v.instancePath), message: v.message }));
    const e = invalid(fields);
    void reply.code(400).send(body(e.code, e.message, fields));
    return;
  }
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      void reply.code(413).send(body('payload_too_large', `request body is too large; the limit for ${req.url} is ${req.routeOptions.bodyLimit ?? 'the configured'} bytes (send smaller batches)`));
      return;
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      void reply.code(400).send(body('invalid_json', `request body is not valid JSON: ${err.message}`, [{ path: '', message: 'expected a JSON object' }]));
      return;
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      void reply.code(415).send(body('unsupported_media_type', 'send the body as application/json'));
      return;
  }
  if (err instanceof SyntaxError) {
    void reply.code(400).send(body('invalid_json', `request body is not valid JSON: ${err.message}`, [{ path: '', message: 'expected a JSON object' }]));
    return;
  }
  const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
  if (status === 500) {
    req.log.error({ err }, 'request failed');
    void reply.code(500).send(body('internal_error', 'the server failed to handle this request; it was not stored. Retry, and report it if it persists'));
    return;
  }
  void reply.code(status).send(body('bad_request', err.message));
}

export function body(code: string, message: string, fields?: FieldError[]): ErrorBody {
  return fields && fields.length > 0 ? { error: code, message, fields } : { error: code, message };
}

export function notFound(req: FastifyRequest, reply: FastifyReply): void {
  void reply.code(404).send(body('not_found', `no route ${req.method} ${req.url.split('?')[0]}; see /openapi.json`));
}
