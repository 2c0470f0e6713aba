/**
 * Nesting depth of JSON, without recursion: hostile requests nest arrays and objects 10,000 levels deep, and the
 * recursive consumers (JSON.stringify, the chat template's tojson, schema compilers) then overflow the call stack.
 */

/** Depth of a parsed JSON value (a scalar is 0, `[]` is 1), stopping early once past `stopAt`. */
export function jsonValueDepth(root: unknown, stopAt = Infinity): number {
  let max = 0;
  const stack: [unknown, number][] = [[root, 0]];
  while (stack.length) {
    const [v, d] = stack.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    const depth = d + 1;
    if (depth > max) max = depth;
    if (max > stopAt) return max;
    for (const x of Array.isArray(v) ? v : Object.values(v)) if (typeof x === 'object' && x !== null) stack.push([x, depth]);
  }
  return max;
}

/** Bracket depth of JSON text (brackets inside strings not counted); meaningful for valid JSON, cheap for any text. */
export function jsonTextDepth(text: string): number {
  let depth = 0;
  let max = 0;
  let inStr = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inStr) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inStr = false;
    } else if (c === 0x22) inStr = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) max = depth;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return max;
}
