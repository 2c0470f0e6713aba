/**
 * The chat page: src/server/public/ (index.html, chat.js, chat.css) plus two maintained libraries served from
 * node_modules as they ship (`marked` renders markdown, `DOMPurify` sanitizes its HTML), so the page needs no
 * network and no build step. GET /chat-config tells the page what the model takes (images or not) and the
 * sampling defaults it starts from. The page's own Content-Security-Policy allows only this origin's scripts and
 * connections (model output that slipped past the sanitizer still could not load or send anything).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Hono } from 'hono';
import type { ServerEngine } from './engine.ts';

const PUBLIC_FILES: Record<string, string> = {
  '/': 'index.html',
  '/chat.js': 'chat.js',
  '/chat.css': 'chat.css',
};
const TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
};
const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

/** A file of src/server/public (dist/ has no copy: the compiled server reads the one under src/). */
function publicFile(name: string): string | null {
  for (const rel of [`./public/${name}`, `../../src/server/public/${name}`]) {
    try {
      return readFileSync(new URL(rel, import.meta.url), 'utf8');
    } catch {
      /* next location */
    }
  }
  return null;
}

/** The browser build of a package, by its ES-module entry (the source-map comment dropped: no map is served). */
function vendorFile(specifier: string): string | null {
  try {
    return readFileSync(fileURLToPath(import.meta.resolve(specifier)), 'utf8').replace(/\n\/\/# sourceMappingURL=\S+\s*$/, '\n');
  } catch {
    return null;
  }
}

const VENDOR: Record<string, string> = { '/vendor/marked.js': 'marked', '/vendor/purify.js': 'dompurify' };

export function mountChatPage(app: Hono, engine: ServerEngine): void {
  const cache = new Map<string, string | null>();
  const serve = (path: string, load: () => string | null, type: string) =>
    app.get(path, (c) => {
      if (!cache.has(path)) cache.set(path, load());
      const body = cache.get(path);
      if (body === null || body === undefined) return c.text(`${path} is missing from this install`, 404);
      return c.body(body, 200, {
        'content-type': type,
        'content-security-policy': CSP,
        'x-content-type-options': 'nosniff',
        'cache-control': 'no-cache',
      });
    });
  for (const [path, file] of Object.entries(PUBLIC_FILES)) serve(path, () => publicFile(file), TYPES[file.split('.').pop()!]!);
  for (const [path, pkg] of Object.entries(VENDOR)) serve(path, () => vendorFile(pkg), TYPES.js!);
  app.get('/chat-config', (c) => {
    const d = engine.samplingDefaults ?? {};
    return c.json({
      model: engine.modelId,
      vision: engine.supportsImages,
      context_length: engine.scheduler.contextLength,
      defaults: {
        temperature: d.temperature ?? 1,
        top_p: d.topP ?? 1,
        top_k: d.topK ?? 0,
        min_p: d.minP ?? 0,
        max_tokens: Math.min(1024, engine.scheduler.contextLength),
      },
    });
  });
}
