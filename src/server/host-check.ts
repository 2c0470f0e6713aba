/**
 * DNS-rebinding defence for a server without an API key: a web page can point a name it controls at 127.0.0.1 and
 * then read this server's answers as same-origin. Such requests carry the attacker's name in `Host`, so a server
 * listening on loopback answers only requests whose Host is a loopback name or address (`localhost`,
 * `*.localhost`, `127.x.x.x`, `[::1]`, any port), plus the name given to --host. A server listening on every
 * interface (0.0.0.0, ::) was exposed on purpose and takes any Host (it warns at start when it has no key); with an
 * API key the key is the defence and any Host is taken. Ollama's allowed-hosts middleware works the same way.
 */
import { isIP } from 'node:net';

/** True for loopback addresses and names: 127.0.0.0/8, ::1, localhost and *.localhost. */
export function isLoopbackHost(host: string): boolean {
  const h = host
    .toLowerCase()
    .replace(/^\[|\]$/g, '')
    .replace(/\.$/, '');
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1' || h === '0:0:0:0:0:0:0:1' || /^::ffff:127\./.test(h);
  return false;
}

/** True when the server listens on every interface. */
export const isUnspecifiedHost = (host: string) => ['0.0.0.0', '::', '[::]', '0:0:0:0:0:0:0:0'].includes(host.toLowerCase());

/** The host part of a Host header value (`name:port`, `[v6]:port`), or null when it is not well formed. */
export function hostOfHeader(value: string): string | null {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:[\]\s/@]+)(?::\d{1,5})?$/.exec(value.trim());
  return m ? m[1]!.replace(/^\[|\]$/g, '').toLowerCase() : null;
}

/**
 * A predicate on Host header values for a server listening on `listenHost` (null: every Host is allowed).
 */
export function hostPolicy(listenHost: string, apiKey: string | undefined): ((hostHeader: string | undefined) => boolean) | null {
  if (apiKey !== undefined || isUnspecifiedHost(listenHost)) return null;
  const own = listenHost.toLowerCase().replace(/^\[|\]$/g, '');
  return (value) => {
    // No Host at all (HTTP/1.0, an in-process app.request) cannot come from a browser: browsers always send one.
    if (value === undefined) return true;
    const h = hostOfHeader(value);
    return h !== null && (isLoopbackHost(h) || h === own);
  };
}
