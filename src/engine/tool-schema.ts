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
  return {
    anyOf: tools.map((t) => {
      const params = t.parameters !== undefined && compilesFn(t.parameters) ? t.parameters : { type: 'object' };
      return { type: 'object', properties: { name: { const: t.name }, parameters: params }, required: ['name', 'parameters'], additionalProperties: false };
    }),
  };
}
