/**
 * Remote image fetching (--allow-remote-images) without server-side request forgery: the server fetches URLs on a
 * client's behalf, so a URL must not reach this machine or its private network (loopback, RFC 1918, link-local
 * cloud metadata at 169.254.169.254, unique-local IPv6, …).
 *
 * - The host is resolved first (every address of the name must be public), and the connection goes to the address
 *   that was checked (the socket's lookup is pinned to it), so DNS rebinding between check and connect cannot
 *   swap in 127.0.0.1. Numeric forms (`2130706433`, `0x7f.1`, `[::ffff:127.0.0.1]`) are normalised by the WHATWG
 *   URL parser before the check.
 * - Redirects are followed by hand (at most 5), each hop checked the same way.
 * - Every failure before the image bytes arrive (refused address, DNS failure, connection refused, timeout, HTTP
 *   error status, bad redirect) gives the same message, so the error cannot be used to scan ports or hosts.
 */
import { lookup } from 'node:dns/promises';
import * as http from 'node:http';
import * as https from 'node:https';
import { BlockList, isIP, type LookupFunction } from 'node:net';

const blocked = new BlockList();
for (const [net, bits] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.88.99.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const)
  blocked.addSubnet(net, bits, 'ipv4');
for (const [net, bits] of [
  ['::', 128],
  ['::1', 128],
  ['64:ff9b::', 96],
  ['64:ff9b:1::', 48],
  ['100::', 64],
  ['2001::', 23],
  ['2001:db8::', 32],
  ['2002::', 16],
  ['fc00::', 7],
  ['fe80::', 10],
  ['fec0::', 10],
  ['ff00::', 8],
] as const)
  blocked.addSubnet(net, bits, 'ipv6');

/** True for an address a server may fetch from: not loopback, private, link-local, multicast or reserved. */
export function isPublicAddress(ip: string): boolean {
  const v = isIP(ip);
  if (v === 4) return !blocked.check(ip, 'ipv4');
  if (v !== 6) return false;
  const lower = ip.toLowerCase();
  // IPv4-mapped and -compatible forms carry an IPv4 address: judge that one.
  const mapped = /^(?:0{0,4}:){0,5}(?:ffff:)?(\d+\.\d+\.\d+\.\d+)$/.exec(lower) ?? /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(lower);
  if (mapped) {
    const v4 = mapped.length === 2 ? mapped[1]! : hexPairToV4(mapped[1]!, mapped[2]!);
    return isIP(v4) === 4 && !blocked.check(v4, 'ipv4');
  }
  return !blocked.check(ip, 'ipv6');
}

function hexPairToV4(a: string, b: string): string {
  const x = parseInt(a, 16);
  const y = parseInt(b, 16);
  return `${x >> 8}.${x & 255}.${y >> 8}.${y & 255}`;
}

export interface RemoteFetchOptions {
  maxBytes: number;
  timeoutMs: number;
  /** Which resolved addresses may be fetched from (default isPublicAddress; tests widen it). */
  allowAddress?: (ip: string) => boolean;
}

const MAX_REDIRECTS = 5;

class Refused extends Error {}

/** Why a remote image was not taken: `tooLarge` (the server answered with more than maxBytes) or not fetched at all. */
export class RemoteImageError extends Error {
  constructor(readonly tooLarge: boolean) {
    super(tooLarge ? 'the image is larger than the size limit' : 'the image could not be fetched from that URL');
  }
}

/** Fetches `url` as image bytes under the rules above; throws RemoteImageError. */
export async function fetchRemoteImage(url: string, o: RemoteFetchOptions): Promise<Uint8Array> {
  const allow = o.allowAddress ?? isPublicAddress;
  const signal = AbortSignal.timeout(o.timeoutMs);
  let current = url;
  try {
    for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
      const u = new URL(current);
      if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Refused('scheme');
      if (u.username || u.password) throw new Refused('credentials');
      const host = u.hostname.replace(/^\[|\]$/g, '');
      const addrs = isIP(host) ? [{ address: host, family: isIP(host) }] : await lookup(host, { all: true, verbatim: true });
      if (addrs.length === 0 || !addrs.every((a) => allow(a.address))) throw new Refused('address');
      const pinned = addrs[0]!;
      const res = await request(u, pinned, signal);
      if (res.statusCode! >= 300 && res.statusCode! < 400 && res.headers.location) {
        res.resume();
        current = new URL(res.headers.location, u).href;
        continue;
      }
      if (res.statusCode !== 200) {
        res.resume();
        throw new Refused(`status ${res.statusCode}`);
      }
      return await readBody(res, o.maxBytes);
    }
    throw new Refused('too many redirects');
  } catch (e) {
    if (e instanceof RemoteImageError) throw e;
    throw new RemoteImageError(false);
  }
}

function request(u: URL, pinned: { address: string; family: number }, signal: AbortSignal): Promise<http.IncomingMessage> {
  // Every connection of this request resolves to the checked address, whatever the name resolves to now.
  const pinnedLookup = ((_host: string, opts: { all?: boolean }, cb: (...a: unknown[]) => void) => {
    if (opts?.all) cb(null, [{ address: pinned.address, family: pinned.family }]);
    else cb(null, pinned.address, pinned.family);
  }) as unknown as LookupFunction;
  const mod = u.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = mod.request(
      u,
      { method: 'GET', lookup: pinnedLookup, signal, headers: { accept: 'image/*', 'user-agent': 'llama4-ts' }, agent: false },
      resolve,
    );
    req.on('error', reject);
    req.end();
  });
}

async function readBody(res: http.IncomingMessage, maxBytes: number): Promise<Uint8Array> {
  const declared = Number(res.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) {
    res.destroy();
    throw new RemoteImageError(true);
  }
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of res as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > maxBytes) {
      res.destroy();
      throw new RemoteImageError(true);
    }
    chunks.push(chunk);
  }
  return new Uint8Array(Buffer.concat(chunks));
}
