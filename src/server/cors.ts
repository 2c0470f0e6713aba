/**
 * CORS, as Ollama does it: browser apps on loopback origins (http://localhost:*, http://127.0.0.1:*, http://[::1]:*,
 * and https) may call the server by default; `--cors ORIGINS` replaces that list (comma-separated origins, `*` in
 * a port or host position as a wildcard, or `*` alone for every origin). The page's own origin (Origin equal to the
 * Host it called) is always allowed. A request from an origin not allowed is refused with 403 (a web page could
 * otherwise post to the server blindly); preflights are answered here, before the API-key check, which still
 * applies to the real request.
 */
import type { MiddlewareHandler } from 'hono';

export const DEFAULT_CORS_ORIGINS = [
  'http://localhost:*',
  'http://127.0.0.1:*',
  'http://[::1]:*',
  'https://localhost:*',
  'https://127.0.0.1:*',
  'https://[::1]:*',
];

/** Compiles origin patterns: `*` matches any run of host or port characters; `scheme://host:*` also matches no port. */
export function originMatcher(patterns: readonly string[]): (origin: string) => boolean {
  if (patterns.includes('*')) return () => true;
  const res = patterns.map((p) => {
    const esc = p.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
    const body = esc.replace(/:\\\*$|:\*$/, '(?::\\d+)?').replace(/\*/g, '[A-Za-z0-9.-]*');
    return new RegExp(`^${body}$`, 'i');
  });
  return (origin) => res.some((r) => r.test(origin));
}

const ALLOW_METHODS = 'GET, POST, DELETE, OPTIONS';
const DEFAULT_ALLOW_HEADERS =
  'authorization, content-type, x-api-key, anthropic-version, anthropic-beta, openai-beta, x-stainless-os, x-stainless-lang, x-stainless-package-version, x-stainless-runtime, x-stainless-runtime-version, x-stainless-arch, x-stainless-retry-count, x-stainless-timeout, user-agent';

export function corsMiddleware(patterns: readonly string[], refuse: (origin: string) => Response): MiddlewareHandler {
  const allowed = originMatcher(patterns);
  return async (c, next) => {
    const origin = c.req.header('origin');
    if (origin === undefined) return next();
    const host = c.req.header('host');
    const sameOrigin = host !== undefined && (origin === `http://${host}` || origin === `https://${host}`);
    if (!sameOrigin && !allowed(origin)) return refuse(origin);
    const headers: Record<string, string> = { 'access-control-allow-origin': origin, vary: 'Origin' };
    if (c.req.method === 'OPTIONS' && c.req.header('access-control-request-method')) {
      return new Response(null, {
        status: 204,
        headers: {
          ...headers,
          'access-control-allow-methods': ALLOW_METHODS,
          'access-control-allow-headers': c.req.header('access-control-request-headers') ?? DEFAULT_ALLOW_HEADERS,
          'access-control-max-age': '600',
        },
      });
    }
    await next();
    for (const [k, v] of Object.entries(headers)) c.res.headers.set(k, v);
    c.res.headers.set('access-control-expose-headers', 'retry-after, x-request-id');
  };
}
