/**
 * `logit_bias` as the APIs send it: OpenAI's {"id": bias} map and llama-server's [[id or text, bias or false], …]
 * list, read into the token → bias map that engine/token-constraints.ts applies.
 */
import type { LogitBias } from '../engine/token-constraints.ts';
import type { ServerEngine } from './engine.ts';
import { badRequest, isObject } from './util.ts';

const MAX_BIAS_ENTRIES = 1024;

/**
 * Reads `logit_bias`: {"123": -100, …} (OpenAI: token id keys, values in [-100, 100]) or [[123, -1.5], [" hello",
 * false], …] (llama-server: ids or text — every token of the text — and a number or false to ban). null when absent.
 */
export function readLogitBias(v: unknown, engine: ServerEngine, path = 'logit_bias'): LogitBias | null {
  if (v === undefined || v === null) return null;
  const out = new Map<number, number>();
  const vocab = engine.vocabulary.size;
  const put = (id: number, bias: unknown, at: string) => {
    if (!Number.isInteger(id) || id < 0 || id >= vocab)
      throw badRequest(`'${at}': token id ${id} is outside the vocabulary (0..${vocab - 1})`, path);
    let b: number;
    if (bias === false) b = -Infinity;
    else if (typeof bias === 'number' && Number.isFinite(bias) && bias >= -100 && bias <= 100) b = bias <= -100 ? -Infinity : bias;
    else throw badRequest(`'${at}' must be a number between -100 and 100${Array.isArray(v) ? ' or false' : ''}`, path);
    out.set(id, b);
    if (out.size > MAX_BIAS_ENTRIES) throw badRequest(`'${path}' has more than ${MAX_BIAS_ENTRIES} entries`, path);
  };
  if (isObject(v)) {
    for (const [k, b] of Object.entries(v)) {
      if (!/^\d+$/.test(k)) throw badRequest(`'${path}' keys must be token ids, got ${JSON.stringify(k.slice(0, 40))}`, path);
      put(Number(k), b, `${path}.${k}`);
    }
  } else if (Array.isArray(v)) {
    v.forEach((e, i) => {
      const at = `${path}[${i}]`;
      if (!Array.isArray(e) || e.length !== 2) throw badRequest(`'${at}' must be a [token id or text, bias] pair`, path);
      const [t, b] = e as [unknown, unknown];
      if (typeof t === 'number') put(t, b, at);
      else if (typeof t === 'string' && t.length > 0 && t.length <= 256) for (const id of engine.tokenize(t)) put(id, b, at);
      else throw badRequest(`'${at}[0]' must be a token id or a non-empty text of at most 256 characters`, path);
    });
  } else throw badRequest(`'${path}' must be an object of token id → bias (or llama-server's list of pairs)`, path);
  return out.size ? out : null;
}
