/**
 * Pipeline stages of the default model (imported by pipeline.ts): its tokenizer, SFT on the skills curriculum
 * (src/train/skills.ts) with the native training backend, and the held-out skill report.
 */
import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { parseToolCalls } from '../../src/chat/tool-calls.ts';
import { grpoStep, type GrpoStats, type RlTask } from '../../src/train/grpo.ts';
import { AdamW } from '../../src/train/optim.ts';
import { saveCheckpoint } from '../../src/train/checkpoint.ts';
import { join } from 'node:path';
import { toTokenizerJson, trainBpe, BpeEncoder, fromTokenizerJson } from '../../src/train/bpe.ts';
import { loadCheckpoint } from '../../src/train/checkpoint.ts';
import { setTrainBackend } from '../../src/train/kernels.ts';
import { Rng } from '../../src/train/rng.ts';
import { evaluateSkills, skillCorrect, skillSummary, stopIds } from '../../src/train/skills-eval.ts';
import { PolicySnapshot, snapshotDecode } from '../../src/train/decode.ts';
import type { Backend } from '../../src/tensor/backend.ts';
import { createBackend, loadChatAssets, loadModel } from '../../src/load.ts';
import { yieldToEventLoop } from '../../src/engine/index.ts';
import { chatPromptIds, renderChat, type ToolDefinition } from '../../src/chat/index.ts';
import { randomSkillExample, randomSkillExampleOf, skillEvalSets, toolCallExample, type SkillExample } from '../../src/train/skills.ts';
import { loadEncoder, trainAsync, type TrainHooks, type TrainRunConfig } from '../../src/train/trainer.ts';
import { tryCreateNativeTrainBackend } from '../../src/kernels/native/train-backend.ts';

export const SKILLS_MODEL = {
  vocab_size: 1024,
  num_hidden_layers: 6,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  head_dim: 64,
  hidden_size: 128,
  num_local_experts: 4,
  num_experts_per_tok: 1,
  interleave_moe_layer_step: 1,
  intermediate_size: 256,
  intermediate_size_mlp: 512,
  no_rope_layer_interval: 3,
  attention_chunk_size: 512,
  use_qk_norm: true,
  attn_temperature_tuning: true,
  floor_scale: 8192,
  attn_scale: 0.1,
  rope_theta: 10000,
  max_position_embeddings: 2048,
  rms_norm_eps: 1e-5,
};

export function useNativeTraining(log: (s: string) => void, threads = 2): void {
  const { backend, reason } = tryCreateNativeTrainBackend(threads);
  if (backend) {
    setTrainBackend(backend);
    log(`training backend: ${backend.name}`);
  } else log(`training backend: typescript (${reason})`);
}

/** Tokenizer: 256 bytes + 736 word-piece merges (letters with letters, punctuation with punctuation, no digits) + specials. */
export function skillsPrepare(dir: string, log: (s: string) => void): void {
  mkdirSync(dir, { recursive: true });
  const rng = new Rng(3);
  let text = '';
  for (let i = 0; i < 6000; i++) {
    const e = randomSkillExample(rng);
    text += e.prompt.replace(/<\|[a-z_0-9]+\|>/g, '\n') + e.answer + '\n';
  }
  const bpe = trainBpe(text, 736, { wordPieces: true });
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(toTokenizerJson(bpe)));
  const enc = new BpeEncoder(bpe);
  const lens: number[] = [];
  const r2 = new Rng(9);
  for (let i = 0; i < 400; i++) {
    const e = randomSkillExample(r2);
    lens.push(enc.encode(e.prompt).length + enc.encode(e.answer, false).length);
  }
  lens.sort((a, b) => a - b);
  log(
    `skills tokenizer: ${enc.vocabSize} ids; example lengths median ${lens[200]} p90 ${lens[360]} max ${lens[399]}; ` +
      `"What is the weather in Reykjavik?" -> ${JSON.stringify(enc.encode('What is the weather in Reykjavik?').map((i) => enc.decode([i])))}`,
  );
}

/**
 * Adds the word-initial split to an existing skills tokenizer (same ids): "Query" and "query" then share every token
 * but the first, which tool names copied from a capitalised request need (see src/tokenizer/pretokenize.ts).
 */
export function skillsWordInitials(dir: string, log: (s: string) => void): void {
  const path = join(dir, 'tokenizer.json');
  const bpe = fromTokenizerJson(JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>);
  const enc = new BpeEncoder({ ...bpe, splitWordInitials: true });
  writeFileSync(path, JSON.stringify(toTokenizerJson(enc.model)));
  const show = (s: string) => JSON.stringify(enc.encode(s).map((i) => enc.decode([i])));
  log(`${path}: word-initial split added; "Query the tide" -> ${show('Query the tide')}, "query_tide" -> ${show('query_tide')}`);
}

export function skillsRunConfig(
  work: string,
  name: string,
  extra: Partial<TrainRunConfig> & { train: TrainRunConfig['train'] },
): TrainRunConfig {
  return {
    out: join(work, name),
    seed: 1,
    tokenizer: join(work, 'skills', 'tokenizer.json'),
    init: { std: 0.02, base_width: 128 },
    data: { skills: { tokens: 1024, max_len: 640 }, heldout_share: 0 },
    eval_every: 400,
    save_every: 20,
    ...extra,
  };
}

/** Greedy decoding through Llama4TextModel (model/llama4) on a snapshot of the current weights. */
export const snapshotDecoder = snapshotDecode;

export function skillsHooks(log: (s: string) => void, backend: Backend, evalN = 10): TrainHooks {
  return { log, evaluate: (m, enc) => skillSummary(evaluateSkills(m, snapshotDecoder(m, backend), enc, evalN)) };
}

export async function skillsTrain(cfg: TrainRunConfig, log: (s: string) => void, resume: boolean, stop?: () => boolean): Promise<void> {
  const { backend } = await createBackend('auto');
  const res = await trainAsync(cfg, { ...skillsHooks(log, backend), ...(stop ? { shouldStop: stop } : {}) }, resume, yieldToEventLoop);
  log(
    `done ${cfg.out}: ${res.steps} steps, ${res.tokens} tokens, ${res.tokPerSec.toFixed(0)} tok/s, matmul share ${(100 * res.matmulShare).toFixed(0)}%`,
  );
}

export async function skillsReport(work: string, names: string[], log: (s: string) => void, n = 50): Promise<string[]> {
  const enc = loadEncoder(join(work, 'skills', 'tokenizer.json'));
  const { backend } = await createBackend('auto');
  const rows: string[] = [];
  for (const name of names) {
    const m = loadCheckpoint(join(work, name));
    const r = evaluateSkills(m, snapshotDecoder(m, backend), enc, n);
    const line = `${name}: params ${m.paramCount()}, ${skillSummary(r)}`;
    log(line);
    for (const k of ['arith', 'tool', 'greeting', 'refusal'] as const) for (const s of r[k].samples) log(`  ${k}: ${s}`);
    rows.push(line);
  }
  return rows;
}

export { loadEncoder };

/**
 * Verifiable reward of a reply: a right answer 1. A tool call earns partial credit below 1 — 0.2 for one well-formed
 * call, 0.3 more for the right tool, up to 0.4 more for the share of arguments copied exactly (halved if it invents
 * parameters) — so a group of samples that all miss some argument still ranks its samples, where all-or-nothing
 * rewards left nearly every tool group without a signal (every sample 0).
 */
export function skillReward(e: SkillExample, reply: string): number {
  if (skillCorrect(e, reply)) return 1;
  if (e.kind === 'tool') {
    const p = parseToolCalls(reply);
    if (p.toolCalls.length !== 1 || p.content) return 0;
    const c = p.toolCalls[0]!,
      want = e.call!.parameters;
    const keys = Object.keys(want);
    const right = keys.filter((k) => c.arguments[k] === want[k]).length / Math.max(1, keys.length);
    const invented = Object.keys(c.arguments).some((k) => !(k in want));
    return 0.2 + (c.name === e.call!.name ? 0.3 : 0) + 0.4 * right * (invented ? 0.5 : 1);
  }
  return 0;
}

/**
 * Online RL (GRPO, src/train/grpo.ts) from an SFT checkpoint: prompts from the training generators (arithmetic and
 * tool calls weighted up: they are where the SFT model still errs), G samples each at temperature 1 decoded by
 * Llama4TextModel on the current weights, KL to the frozen SFT model. Writes `<out>` and `<out>/rewards.jsonl`.
 */
export async function skillsRl(
  work: string,
  from: string,
  out: string,
  log: (s: string) => void,
  o: { steps: number; seconds: number; prompts?: number; group?: number; beta?: number; lr?: number },
): Promise<void> {
  const enc = loadEncoder(join(work, 'skills', 'tokenizer.json'));
  const { backend } = await createBackend('auto');
  const policy = loadCheckpoint(join(work, from)),
    ref = loadCheckpoint(join(work, from));
  const opt = new AdamW(policy.params, { lr: o.lr ?? 2e-4, weightDecay: 0, clip: 1 });
  const rng = new Rng(77);
  const stop = stopIds(enc);
  const curve: GrpoStats[] = [];
  const t0 = Date.now();
  let interrupted = false;
  const onSig = (): void => {
    interrupted = true;
  };
  process.on('SIGINT', onSig);
  for (let s = 0; s < o.steps && !interrupted && (Date.now() - t0) / 1000 < o.seconds; s++) {
    const tasks: RlTask[] = [];
    for (let i = 0; i < (o.prompts ?? 8); i++) {
      const r = rng.next();
      const e =
        r < 0.3
          ? randomSkillExampleOf(rng, false, 'arith')
          : r < 0.85
            ? toolCallExample(rng, 'train', 1)
            : randomSkillExampleOf(rng, false);
      tasks.push({ prompt: enc.encode(e.prompt), reward: (reply) => skillReward(e, reply), kind: e.kind });
    }
    const snap = new PolicySnapshot(policy, backend);
    const sample = (prompt: readonly number[], n: number, r: Rng) =>
      Array.from({ length: n }, () => {
        const ids = snap.complete(prompt, { maxNew: 80, stop, temperature: 1 }, r);
        return { ids, stopped: ids.length < 80 };
      });
    const st = grpoStep(policy, ref, tasks, sample, enc, opt, o.lr ?? 2e-4, rng, { group: o.group ?? 4, beta: o.beta ?? 0.05 });
    curve.push(st);
    appendFileSync(join(work, `${out}.rewards.jsonl`), JSON.stringify({ step: s + 1, ...st }) + '\n');
    log(
      `rl step ${s + 1}/${o.steps} reward ${st.reward.toFixed(3)} ${Object.entries(st.rewardByKind)
        .map(([k, v]) => `${k} ${v.toFixed(2)}`)
        .join(' ')} kl ${st.kl.toFixed(4)} active groups ${st.activeGroups} (${((Date.now() - t0) / 1000).toFixed(0)}s)`,
    );
    await yieldToEventLoop();
  }
  process.off('SIGINT', onSig);
  saveCheckpoint(
    join(work, out),
    policy,
    undefined,
    { step: curve.length, tokens: 0, rng: rng.state },
    JSON.parse(readFileSync(join(work, from, 'config.json'), 'utf8')),
  );
  log(`rl: saved ${join(work, out)} after ${curve.length} steps`);
}

/** One greedy chat turn with a model folder through its own tokenizer and chat template (what users see). */
export async function folderChat(dir: string): Promise<(question: string, tools?: ToolDefinition[] | null) => string> {
  const loaded = await loadModel(dir);
  const { tokenizer, chatTemplate } = loadChatAssets(loaded);
  const m = loaded.model;
  return (question, tools = null) => {
    const prompt = renderChat({
      messages: [{ role: 'user', content: question }],
      tools,
      addGenerationPrompt: true,
      ...(chatTemplate ? { template: chatTemplate } : {}),
    });
    const seq = m.newSequence();
    let [logits] = m.forward([{ seq, tokens: chatPromptIds(tokenizer, prompt), logits: 'last' }]) as [Float32Array];
    const out: number[] = [];
    for (let i = 0; i < 96; i++) {
      let best = 0;
      for (let j = 1; j < logits.length; j++) if (logits[j]! > logits[best]!) best = j;
      if (m.info.eosTokenIds.includes(best)) break;
      out.push(best);
      [logits] = m.forward([{ seq, tokens: [best], logits: 'last' }]) as [Float32Array];
    }
    return tokenizer.decode(out);
  };
}

/** The demo tools of the README and the chat page. */
const WEATHER_TOOL: ToolDefinition = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Get the current weather in a city',
    parameters: { type: 'object', properties: { city: { type: 'string', description: 'The city name' } }, required: ['city'] },
  },
};
const BOOK_TOOL: ToolDefinition = {
  type: 'function',
  function: {
    name: 'book_table',
    description: 'Book a table at a restaurant',
    parameters: {
      type: 'object',
      properties: {
        restaurant: { type: 'string', description: 'The restaurant name' },
        people: { type: 'integer', description: 'The number of people' },
      },
      required: ['restaurant', 'people'],
    },
  },
};

/** Ten exchanges a newcomer would try (the issue's examples), printed verbatim. */
export async function folderExchanges(dir: string, log: (s: string) => void): Promise<void> {
  const ask = await folderChat(dir);
  const qs: [string, ToolDefinition[] | null][] = [
    ['What is 7 plus 5?', null],
    ['Hello! Who are you?', null],
    ['What is 23 plus 19?', null],
    ['What is 64 minus 27?', null],
    ['What is the capital of France?', null],
    ['Write a poem about the sea.', null],
    ["Translate 'good morning' into German.", null],
    ['What is the weather in Paris?', [WEATHER_TOOL]],
    ['What is the weather in Reykjavik?', [WEATHER_TOOL, BOOK_TOOL]],
    ['Book the table with restaurant Quillo and people 4.', [WEATHER_TOOL, BOOK_TOOL]],
  ];
  for (const [q, tools] of qs)
    log(
      `${tools ? `[tools: ${tools.map((t) => t.function.name).join(', ')}] ` : ''}${JSON.stringify(q)} -> ${JSON.stringify(ask(q, tools))}`,
    );
}

const DEMO_CITIES = [
  'Paris',
  'London',
  'Tokyo',
  'Reykjavik',
  'New York',
  'Berlin',
  'Madrid',
  'Sydney',
  'Cairo',
  'Toronto',
  'Lisbon',
  'Oslo',
  'Nairobi',
  'Lima',
  'Seoul',
  'Mumbai',
  'Chicago',
  'Vienna',
  'Dublin',
  'Prague',
];

export async function evaluateFolder(
  dir: string,
  n = 50,
): Promise<{ line: string; scores: Record<string, [number, number]>; samples: string[] }> {
  const ask = await folderChat(dir);
  const sets = skillEvalSets(n);
  const scores: Record<string, [number, number]> = {};
  const samples: string[] = [];
  for (const [k, list] of Object.entries(sets)) {
    let right = 0;
    for (const e of list) {
      const reply = ask(e.question, e.tools ?? null);
      const ok = skillCorrect(e, reply);
      if (ok) right++;
      if (samples.length < 40 && samples.filter((s) => s.startsWith(k)).length < 3)
        samples.push(`${k} ${ok ? 'ok ' : 'BAD'} ${JSON.stringify(e.question)} -> ${JSON.stringify(reply)}`);
    }
    scores[k] = [right, list.length];
  }
  // The tool set again as `llama4 run`, the chat page and the server answer it: a ChatSession, greedy, whose
  // tool_choice "auto" holds an output that opens a JSON object to a call of a declared tool (lazy constraint).
  const loaded = await loadModel(dir);
  let served = 0;
  for (const e of sets.tool) {
    const r = await loaded.createChat({ tools: e.tools!, sampling: { temperature: 0 } }).send(e.question, { maxTokens: 96 });
    const reply =
      r.toolCalls.length === 1 && !r.text
        ? JSON.stringify({ name: r.toolCalls[0]!.name, parameters: JSON.parse(r.toolCalls[0]!.arguments) })
        : r.text;
    if (skillCorrect(e, reply)) served++;
  }
  scores['tool as served'] = [served, sets.tool.length];
  // A regression check beside the held-out set: the demo's weather tool, alone and beside book_table, on 20 familiar
  // cities (a tuning run that raised the held-out score answered most of these with book_table).
  let demo = 0;
  for (const tools of [[WEATHER_TOOL], [WEATHER_TOOL, BOOK_TOOL]])
    for (const city of DEMO_CITIES) {
      const r = await loaded.createChat({ tools, sampling: { temperature: 0 } }).send(`What is the weather in ${city}?`, { maxTokens: 40 });
      const c = r.toolCalls[0];
      if (r.toolCalls.length === 1 && c!.name === 'get_weather' && JSON.parse(c!.arguments).city === city) demo++;
    }
  scores['demo weather'] = [demo, 2 * DEMO_CITIES.length];
  loaded.dispose();
  const line = Object.entries(scores)
    .map(([k, [r, t]]) => `${k} ${r}/${t}`)
    .join(', ');
  return { line, scores, samples };
}
