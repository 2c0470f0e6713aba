/**
 * The JSON schema of one Llama 4 JSON tool call, for constrained decoding: every chat surface (server routes,
 * ChatSession, the CLI) holds the model to the tools the caller declared through it.
 */
import { compileSchema } from './json-schema.ts';

/** Whether a schema compiles for constrained decoding. */
export function compiles(schema: unknown): boolean {
  try {
    compileSchema(schema);
    return true;
  } catch {
    return false;
  }
}

/**
 * The JSON schema of one Llama 4 JSON tool call ({"name": …, "parameters": …}) to one of `tools`: used to enforce
 * tool_choice "required" / a named function (Anthropic "any" / "tool") through constrained decoding, and as the lazy
 * trigger of tool_choice "auto". A tool whose parameter schema uses keywords the automaton cannot honour gets "any
 * object" for its parameters.
 */
export function toolCallSchema(tools: { name: string; parameters?: unknown }[], compilesFn: (s: unknown) => boolean = compiles): unknown {
  const $defs: Record<string, unknown> = {};
  const anyOf = tools.map((t, i) => {
    const params =
      t.parameters !== undefined && compilesFn(t.parameters) ? hoistDefs(t.parameters, `tool${i}.`, $defs) : { type: 'object' };
    return {
      type: 'object',
      properties: { name: { const: t.name }, parameters: params },
      required: ['name', 'parameters'],
      additionalProperties: false,
    };
  });
  return Object.keys($defs).length ? { $defs, anyOf } : { anyOf };
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * A tool's parameter schema moved under another root: its `$defs` / `definitions` go to the new root's `$defs` with
 * `prefix` on their names, and its local `$ref`s are rewritten to match (a `$ref` resolves against the root, so
 * without this a tool's `$ref` was refused as pointing nowhere under tool_choice "required").
 */
function hoistDefs(schema: unknown, prefix: string, into: Record<string, unknown>): unknown {
  const rewrite = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(rewrite);
    if (!isObject(v)) return v;
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      if (k === '$ref' && typeof x === 'string') out[k] = x.replace(/^#\/(\$defs|definitions)\//, `#/$defs/${prefix}`);
      else out[k] = rewrite(x);
    }
    return out;
  };
  if (!isObject(schema)) return schema;
  for (const k of ['$defs', 'definitions']) {
    const defs = schema[k];
    if (isObject(defs)) for (const [name, d] of Object.entries(defs)) into[`${prefix}${name}`] = rewrite(d);
  }
  const { $defs: _d, definitions: _f, ...rest } = schema;
  return rewrite(rest);
}
