/**
 * Typed reads of the fields of parsed JSON (config.json, vision_config, train configs) and of GGUF metadata: each
 * bad or missing field becomes one error naming the source and the field. One home for what five parsers wrote
 * each for themselves.
 */
import { ConfigError } from './errors.ts';

export interface FieldReaderOptions {
  /** The source, first in every message ("config.json", "model.gguf"). */
  readonly where: string;
  /** How a key is named in messages (default `"key"`). */
  readonly label?: (key: string) => string;
  /** Builds the error from the whole message (default ConfigError). */
  readonly error?: (message: string) => Error;
  /** Read true/false as 1/0 (training configs write flags either way). */
  readonly booleansAsNumbers?: boolean;
  /** Largest value posInt accepts (default Number.MAX_SAFE_INTEGER). */
  readonly maxInt?: number;
}

export interface FieldReader {
  /** A finite number; `dflt` when absent or null, else an error naming the field. */
  num(key: string, dflt?: number): number;
  /** An integer >= 1 (and <= maxInt). */
  posInt(key: string, dflt?: number): number;
  /** The first of `keys` holding an integer >= 0 (a token id), else null. Never throws. */
  optId(...keys: string[]): number | null;
  /** A number (a GGUF bigint converted) or undefined. Never throws. */
  optNum(key: string): number | undefined;
}

/** A reader over any key → value lookup (a JSON object, a GGUF metadata Map). */
export function fieldReader(get: (key: string) => unknown, o: FieldReaderOptions): FieldReader {
  const label = o.label ?? ((k: string) => `"${k}"`);
  const fail = (msg: string): Error => (o.error ? o.error(`${o.where}: ${msg}`) : new ConfigError(`${o.where}: ${msg}`));
  const maxInt = o.maxInt ?? Number.MAX_SAFE_INTEGER;
  const num = (key: string, dflt?: number): number => {
    let v = get(key);
    if (v === undefined || v === null) {
      if (dflt === undefined) throw fail(`missing required field ${label(key)}`);
      return dflt;
    }
    if (typeof v === 'bigint') v = Number(v);
    if (typeof v === 'boolean' && o.booleansAsNumbers) return v ? 1 : 0;
    if (typeof v !== 'number' || !Number.isFinite(v))
      throw fail(`${label(key)} must be a number, got ${typeof v === 'bigint' ? String(v) : JSON.stringify(v)}`);
    return v;
  };
  return {
    num,
    posInt(key, dflt) {
      const v = num(key, dflt);
      if (!Number.isInteger(v) || v < 1 || v > maxInt) throw fail(`${label(key)} must be a positive integer, got ${v}`);
      return v;
    },
    optId(...keys) {
      for (const k of keys) {
        const v = get(k);
        const n = typeof v === 'bigint' ? Number(v) : v;
        if (typeof n === 'number' && Number.isInteger(n) && n >= 0) return n;
      }
      return null;
    },
    optNum(key) {
      const v = get(key);
      return typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : undefined;
    },
  };
}

/** A reader over a parsed JSON object. */
export function jsonFields(obj: Readonly<Record<string, unknown>>, o: FieldReaderOptions): FieldReader {
  return fieldReader((k) => obj[k], o);
}
