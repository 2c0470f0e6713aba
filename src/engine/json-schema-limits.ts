/**
 * Bounds on a JSON Schema before json-schema.ts compiles it: requests carry schemas (response_format, tool
 * parameters), so a hostile one must cost a bounded, small amount of work and memory, and fail with one UsageError
 * that says which bound it passed.
 *
 * - nesting depth (the compiler recurses once per level): at most `maxDepth` JSON levels;
 * - size: at most `maxNodes` JSON values in the whole schema, at most `maxEnumEntries` enum/const values and
 *   `maxEnumChars` characters in them (each automaton step filters the live options, and the token mask runs that
 *   step for every candidate token);
 * - `$ref` cycles that consume no input: `{"$defs":{"a":{"$ref":"#/$defs/a"}},"$ref":"#/$defs/a"}` or a
 *   left-recursive `anyOf` would make the automaton look for a first character forever. A cycle through an object
 *   or array (a tree of nodes) is fine: every turn of it consumes a '{' or '['.
 *
 * The check walks the raw JSON with an explicit stack (no recursion), so it is linear in the schema's size and
 * cannot overflow the call stack whatever the depth; with these bounds compilation takes milliseconds.
 */
import { UsageError } from '../util/index.ts';

export interface SchemaLimits {
  maxDepth: number;
  maxNodes: number;
  maxEnumEntries: number;
  maxEnumChars: number;
}

/** OpenAI's structured outputs allow 5,000 properties, 10 levels and 1,000 enum values; these leave room above. */
export const SCHEMA_LIMITS: SchemaLimits = { maxDepth: 96, maxNodes: 50_000, maxEnumEntries: 5_000, maxEnumChars: 256 * 1024 };

/**
 * Most live readings (automaton stacks) of one output: nested anyOf alternatives multiply (30 alternatives at each
 * of 4 levels is 810,000 after "[[[[" and a second per character; each live reading multiplies the token mask's work), and the token mask runs the automaton for every
 * candidate token. Past this the request fails with a UsageError instead of holding the scheduler.
 */
export const MAX_PARSE_STACKS = 64;

/**
 * Most automaton steps (stacks × characters) one token mask may take, and the most time: a step costs about a
 * microsecond on the 2-core EPYC (more for numbers closing nested arrays), so a mask holds the scheduler about a
 * second at most before the request fails. Ordinary schemas stay far below: dead prefixes are skipped, enum and key
 * prefixes are binary searches, and free strings take their plain tokens without walking them (measured with
 * Llama 4's 200k vocabulary: a maxLength string 15-40 ms, 5,000 object keys 40-70 ms, a 5,000-value enum 14 ms).
 */
export const MAX_MASK_WORK = 1_000_000;
/** The same bound in time (a loaded machine, or steps dearer than the estimate): a mask stops after this long. */
export const MAX_MASK_MS = 1500;

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Throws UsageError (prefixed by `where`) when `root` passes a bound or has a $ref cycle that consumes no input. */
export function checkSchemaLimits(root: unknown, where = 'json schema', limits: SchemaLimits = SCHEMA_LIMITS): void {
  const bad = (msg: string) => new UsageError(`${where}: ${msg}`);
  let nodes = 0;
  let enumEntries = 0;
  let enumChars = 0;
  const stack: [unknown, number][] = [[root, 1]];
  while (stack.length) {
    const [v, depth] = stack.pop()!;
    if (++nodes > limits.maxNodes) throw bad(`the schema has more than ${limits.maxNodes} values`);
    if (depth > limits.maxDepth) throw bad(`the schema is nested deeper than ${limits.maxDepth} levels`);
    if (Array.isArray(v)) for (const x of v) stack.push([x, depth + 1]);
    else if (isObj(v)) {
      for (const [k, x] of Object.entries(v)) {
        stack.push([x, depth + 1]);
        if ((k === 'enum' && Array.isArray(x)) || k === 'const') {
          for (const e of k === 'enum' ? (x as unknown[]) : [x]) {
            enumEntries++;
            // Non-strings are measured by their JSON text, bounded by the depth and node checks above.
            enumChars += typeof e === 'string' ? e.length : typeof e === 'object' && e !== null ? 16 : String(e).length;
          }
          if (enumEntries > limits.maxEnumEntries) throw bad(`the schema has more than ${limits.maxEnumEntries} enum/const values`);
          if (enumChars > limits.maxEnumChars) throw bad(`the schema's enum/const values have more than ${limits.maxEnumChars} characters`);
        }
      }
    }
  }
  checkRefCycles(root, bad);
}

/** Definitions a schema can reach without consuming a character: its own $ref, and those of its anyOf/oneOf/allOf members. */
function leadingRefs(s: unknown, out: string[]): void {
  const todo = [s];
  while (todo.length) {
    const x = todo.pop();
    if (!isObj(x)) continue;
    if (typeof x.$ref === 'string') {
      out.push(x.$ref);
      continue;
    }
    for (const k of ['anyOf', 'oneOf', 'allOf']) {
      const alts = x[k];
      if (Array.isArray(alts)) todo.push(...alts);
    }
  }
}

function checkRefCycles(root: unknown, bad: (msg: string) => Error): void {
  if (!isObj(root)) return;
  const target = (ref: string): unknown => {
    const m = /^#\/(\$defs|definitions)\/(.+)$/.exec(ref);
    const defs = m ? root[m[1]!] : undefined;
    return isObj(defs) ? defs[m![2]!] : undefined;
  };
  // Depth-first search over "reaches without input" edges, iterative; state 1 = on the path, 2 = finished.
  const state = new Map<string, 1 | 2>();
  // Every definition starts a search (a cycle may sit under a property, reached only after a '{').
  const start: string[] = [];
  for (const k of ['$defs', 'definitions'])
    if (isObj(root[k])) for (const name of Object.keys(root[k] as object)) start.push(`#/${k}/${name}`);
  for (const first of start) {
    if (state.get(first) === 2) continue;
    const path: { ref: string; next: string[] }[] = [];
    const enter = (ref: string) => {
      state.set(ref, 1);
      const next: string[] = [];
      leadingRefs(target(ref), next);
      path.push({ ref, next });
    };
    enter(first);
    while (path.length) {
      const top = path[path.length - 1]!;
      const n = top.next.pop();
      if (n === undefined) {
        state.set(top.ref, 2);
        path.pop();
        continue;
      }
      const st = state.get(n);
      if (st === 1) {
        const cycle = [...path.slice(path.findIndex((p) => p.ref === n)).map((p) => p.ref), n];
        throw bad(`$ref cycle that never reads a character: ${cycle.join(' → ')}`);
      }
      if (st === undefined) enter(n);
    }
  }
}
