/**
 * Held-out evaluation of the default model's skills (src/train/skills.ts): greedy answers scored per line of the
 * goal — arithmetic (the answer's last number is right), tool calls (parseToolCalls finds exactly one call, to the
 * right tool, with arguments equal to the question's values), greetings and refusals (the reply is the expected
 * sentence), plus perplexity of the held-out answers.
 */
import { parseToolCalls } from '../chat/tool-calls.ts';
import type { BpeEncoder } from './bpe.ts';
import { crossEntropy } from './loss.ts';
import type { TrainModel } from './model.ts';
import { packChat } from './trainer.ts';
import { skillEvalSets, type SkillExample } from './skills.ts';

export interface SkillScore {
  n: number;
  right: number;
  samples: string[];
}
export type SkillReport = Record<'arith' | 'tool' | 'greeting' | 'refusal', SkillScore> & { answerPpl: number };

/** Whether a greedy reply passes the example's check. */
export function skillCorrect(e: SkillExample, reply: string): boolean {
  switch (e.kind) {
    case 'arith': {
      const want = e.answer.match(/-?\d+(?=\.$)/)![0];
      const nums = reply.match(/-?\d+/g);
      return !!nums && nums[nums.length - 1] === want && !/\d/.test(reply.slice(reply.lastIndexOf(want) + want.length));
    }
    case 'tool': {
      const p = parseToolCalls(reply);
      if (p.toolCalls.length !== 1 || p.content) return false;
      const c = p.toolCalls[0]!;
      const want = e.call!.parameters,
        got = c.arguments;
      return (
        c.name === e.call!.name &&
        Object.keys(got).length === Object.keys(want).length &&
        Object.entries(want).every(([k, v]) => got[k] === v)
      );
    }
    default:
      return reply.trim() === e.answer;
  }
}

import type { GreedyDecode } from './decode.ts';
export type { GreedyDecode };

export function stopIds(enc: BpeEncoder): number[] {
  return [enc.special('<|eot|>'), enc.special('<|eom|>'), enc.special('<|end_of_text|>')];
}

export function greedyReply(decode: GreedyDecode, enc: BpeEncoder, prompt: string, maxNew = 64): string {
  const out = decode(enc.encode(prompt), maxNew, stopIds(enc));
  return enc.decode(out.filter((t) => t < enc.model.vocab.length));
}

/**
 * Scores `n` examples per set (greetings and refusals: all of theirs). Replies are decoded with `decode` (the
 * inference model on the current weights); the answer perplexity is teacher-forced on the training model.
 */
export function evaluateSkills(model: TrainModel, decode: GreedyDecode, enc: BpeEncoder, n = 50): SkillReport {
  const sets = skillEvalSets(n);
  const out = {} as SkillReport;
  for (const [k, list] of Object.entries(sets) as [keyof typeof sets, SkillExample[]][]) {
    const s: SkillScore = { n: list.length, right: 0, samples: [] };
    for (const e of list) {
      const reply = greedyReply(decode, enc, e.prompt, 96);
      const ok = skillCorrect(e, reply);
      if (ok) s.right++;
      if (s.samples.length < 3 || (!ok && s.samples.length < 6))
        s.samples.push(`${ok ? 'ok ' : 'BAD'} ${JSON.stringify(e.question)} -> ${JSON.stringify(reply)}`);
    }
    out[k] = s;
  }
  // Perplexity of the reference answers (teacher-forced), all sets together.
  const eot = enc.special('<|eot|>'),
    pad = enc.special('<|finetune_right_pad|>');
  let loss = 0,
    count = 0;
  const all = Object.values(sets).flat();
  for (let i = 0; i < all.length; i += 8) {
    const rows = all.slice(i, i + 8).map((e) => ({ prompt: enc.encode(e.prompt), answer: [...enc.encode(e.answer, false), eot] }));
    const b = packChat(rows, 1024, pad);
    const r = crossEntropy(model.forward(b.tokens, b.B, b.T, false), b.targets, model.cfg.vocabSize);
    loss += r.loss * r.count;
    count += r.count;
  }
  out.answerPpl = Math.exp(loss / Math.max(1, count));
  return out;
}

export function skillSummary(r: SkillReport): string {
  return `arith ${r.arith.right}/${r.arith.n}, tools ${r.tool.right}/${r.tool.n}, greeting ${r.greeting.right}/${r.greeting.n}, refusal ${r.refusal.right}/${r.refusal.n}, answer ppl ${r.answerPpl.toFixed(3)}`;
}
