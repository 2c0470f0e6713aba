/**
 * Evaluation of a trained chat model: arithmetic accuracy (greedy answers to "What is A op B?") on trained and
 * held-out facts, and the share of tool-requiring prompts answered with a well-formed JSON tool call
 * ({"name": <an offered tool>, "parameters": {...}}), plus whether it is the right call.
 */
import { parseToolCalls } from '../chat/tool-calls.ts';
import type { BpeEncoder } from './bpe.ts';
import { arithmeticExample, arithmeticFacts, isHeldOut, OPS, toolExample, TOOLS } from './data.ts';
import type { GreedyDecode } from './decode.ts';
import { Rng } from './rng.ts';

export interface ArithResult {
  n: number;
  exact: number;
  rightNumber: number;
  samples: string[];
}

/** Greedy answers; `exact` = the answer is exactly "A op B is C.", `rightNumber` = the last number in it is C. */
export function arithmeticAccuracy(
  decode: GreedyDecode,
  enc: BpeEncoder,
  facts: { op: keyof typeof OPS; a: number; b: number }[],
): ArithResult {
  const ex = facts.map((f) => arithmeticExample(f.op, f.a, f.b));
  const stops = [enc.special('<|eot|>'), enc.special('<|eom|>'), enc.special('<|end_of_text|>')];
  const outs = ex.map((e) => decode(enc.encode(e.prompt), 16, stops));
  let exact = 0,
    right = 0;
  const samples: string[] = [];
  outs.forEach((o, i) => {
    const text = enc.decode(o.filter((t) => t < enc.model.vocab.length));
    const f = facts[i]!,
      want = OPS[f.op](f.a, f.b);
    if (text === ex[i]!.answer) exact++;
    const nums = text.match(/-?\d+/g);
    if (nums && Number(nums[nums.length - 1]) === want) right++;
    if (samples.length < 4) samples.push(`${ex[i]!.question} -> ${JSON.stringify(text)}`);
  });
  return { n: facts.length, exact, rightNumber: right, samples };
}

/** A fixed evaluation set: `n` trained facts with both numbers ≤ 10 and every held-out fact. */
export function evalFacts(n = 60): { small: ReturnType<typeof arithmeticFacts>; heldOut: ReturnType<typeof arithmeticFacts> } {
  const all = arithmeticFacts();
  const rng = new Rng(12345);
  const small = rng.shuffle(all.filter((f) => f.a <= 10 && f.b <= 10)).slice(0, n);
  return { small, heldOut: all.filter(isHeldOut) };
}

export interface ToolResult {
  n: number;
  wellFormed: number;
  correct: number;
  samples: string[];
}

/** Tool prompts with held-out cities; well-formed = parseToolCalls (src/chat) accepts one call to an offered tool. */
export function toolCallAccuracy(decode: GreedyDecode, enc: BpeEncoder, n = 16): ToolResult {
  const rng = new Rng(777);
  const ex = Array.from({ length: n }, () => toolExample(rng, true));
  const stops = [enc.special('<|eot|>'), enc.special('<|eom|>')];
  const outs = ex.map((e) => decode(enc.encode(e.prompt), 40, stops));
  let wf = 0,
    ok = 0;
  const samples: string[] = [];
  outs.forEach((o, i) => {
    const text = enc.decode(o.filter((t) => t < enc.model.vocab.length)).trim();
    // Well-formed = the project's parser (the server's) finds exactly one call, to an offered tool, and no prose.
    const parsed = parseToolCalls(text);
    const call = parsed.toolCalls[0];
    if (parsed.toolCalls.length === 1 && parsed.content === null && call && TOOLS.some((t) => t.name === call.name)) {
      wf++;
      if (JSON.stringify({ name: call.name, parameters: call.arguments }) === ex[i]!.answer.replace(/: /g, ':').replace(/, /g, ',')) ok++;
    }
    if (samples.length < 2) samples.push(`${ex[i]!.question} -> ${JSON.stringify(text)}`);
  });
  return { n, wellFormed: wf, correct: ok, samples };
}

/** One-line summary used at training eval points. */
export function chatEvalSummary(decode: GreedyDecode, enc: BpeEncoder, nSmall = 40, withTools = false): string {
  const { small } = evalFacts(nSmall);
  const r = arithmeticAccuracy(decode, enc, small);
  let s = `arithmetic (<=10) right number ${r.rightNumber}/${r.n}, exact ${r.exact}/${r.n}; ${r.samples.slice(0, 2).join(' | ')}`;
  if (withTools) {
    const t = toolCallAccuracy(decode, enc, 8);
    s += `; tool calls well-formed ${t.wellFormed}/${t.n}, correct ${t.correct}/${t.n}; ${t.samples[0]}`;
  }
  return s;
}
