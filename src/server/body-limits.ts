/**
 * Limits on request bodies beyond their byte size: nesting depth (a 10,000-deep `tool_use.input` or
 * `response_format` schema would overflow the stack of every recursive consumer: JSON.stringify, the chat
 * template's tojson, the schema compiler), and the content types a JSON API takes.
 */
import { jsonValueDepth } from '../util/index.ts';
import { ApiError, badRequest } from './util.ts';

/** Deepest JSON nesting a request body may have: JSON schemas may nest 96 levels (json-schema-limits.ts) under the body's own few. */
export const MAX_BODY_DEPTH = 128;

export function checkBodyDepth(body: unknown, max = MAX_BODY_DEPTH): void {
  if (jsonValueDepth(body, max) > max) throw badRequest(`the request body is nested deeper than ${max} levels`);
}

/**
 * Content types a page on another origin can send without a CORS preflight ("simple requests"): a JSON API that
 * accepted them would run requests posted blindly by any web page. text/plain and multipart/form-data are refused;
 * application/x-www-form-urlencoded (curl -d's default) only when a browser sent it (an Origin header).
 */
export function checkJsonContentType(contentType: string | undefined, origin: string | undefined): void {
  const t = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  const refuse = t === 'text/plain' || t === 'multipart/form-data' || (t === 'application/x-www-form-urlencoded' && origin !== undefined);
  if (refuse) throw new ApiError(415, 'invalid_request', `this endpoint takes application/json, not ${t}`);
}
