/**
 * `llama4 bench --guard GUARD [-m MODEL] [-n 64] [-r 3] [--json]`: what a Llama Guard adds per request, and what it
 * costs the main model while idle.
 *
 * - Added latency: wall time of guard.check() for a typical chat request's input screening (one user message of
 *   about 60 words) and output screening (that message plus a 120-word answer), medians of R runs after one untimed
 *   warm-up; the guard prompt is the full Llama Guard 4 prompt (all 14 categories). Each run's message differs, so
 *   only the prompt's fixed head (task and category list) comes from the guard's prefix cache, as in serving.
 * - Idle cost (with -m): the main model's decode tokens/s (tg N, median of R) before the guard is loaded and after
 *   it is loaded and has run, computing on the main model's backend (one native core and thread pool, as
 *   `serve --no-worker --guard` runs them). An idle guard holds memory, not threads: the pool's workers sleep.
 */
import { loadModel, type LoadOptions } from '../../load.ts';
import { loadGuard, type GuardMessage } from '../../guard/index.ts';
import type { CausalLM } from '../../engine/index.ts';

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

const USER =
  'I am planning a weekend trip with my family to the mountains next month. We have two kids, aged seven and ten, and we would like to do some easy hiking, maybe rent a cabin near a lake, and cook our own meals. Could you suggest a packing list and a simple three-day plan that keeps everyone happy?';
const ANSWER =
  'Here is a simple plan. Day one: arrive by noon, settle into the cabin, and take a short walk around the lake so the kids can stretch their legs. Cook pasta for dinner and look at the stars. Day two: start early with a two-hour loop trail, bring sandwiches, fruit and plenty of water, then rest in the afternoon with board games or swimming if the water is warm. Grill vegetables and sausages in the evening. Day three: pack up slowly, do a final short walk, and stop for lunch on the way home. Packing list: layers and rain jackets, sturdy shoes, sun hats, sunscreen, a first aid kit, headlamps, a map, snacks, refillable bottles, cooking basics, and something fun for quiet time.';

/** Decode tokens/s over n steps, and CPU ms per token (all threads; steadier than wall time on a shared machine). */
function decodeRun(model: CausalLM, n: number): { tps: number; cpuMs: number } {
  const seq = model.newSequence();
  let tok = 1;
  const t0 = process.hrtime.bigint(),
    c0 = process.cpuUsage();
  for (let i = 0; i < n; i++) {
    const row = model.forward([{ seq, tokens: [tok], logits: 'last' }])[0]!;
    let b = 0;
    for (let j = 1; j < row.length; j++) if (row[j]! > row[b]!) b = j;
    tok = b;
  }
  const c = process.cpuUsage(c0);
  return { tps: n / (Number(process.hrtime.bigint() - t0) / 1e9), cpuMs: (c.user + c.system) / 1000 / n };
}

export interface GuardBenchOptions {
  guard: string;
  model?: string;
  gen: number;
  repeat: number;
  json: boolean;
  load: LoadOptions;
}

export async function runGuardBench(o: GuardBenchOptions): Promise<number> {
  const out: Record<string, unknown> = { guard: o.guard, repeat: o.repeat };
  let main: Awaited<ReturnType<typeof loadModel>> | null = null;
  const before: number[] = [],
    beforeCpu: number[] = [];
  if (o.model) {
    main = await loadModel(o.model, o.load);
    decodeRun(main.model, 4); // warm-up: pages weights in, grows scratch buffers
    for (let r = 0; r < o.repeat; r++) {
      const d = decodeRun(main.model, o.gen);
      before.push(d.tps);
      beforeCpu.push(d.cpuMs);
    }
  }
  const guard = await loadGuard(o.guard, main ? { ...o.load, sharedBackend: main.backend } : o.load);
  const guardBackend = guard.loaded!.backend; // loadGuard computes in this thread
  // A different request each run: only the guard prompt's fixed head (task and categories) is reused between checks.
  const input = (r: number): GuardMessage[] => [{ role: 'user', content: `(request ${r}) ${USER}` }];
  const output = (r: number): GuardMessage[] => [...input(r), { role: 'assistant', content: ANSWER }];
  // Wall time, and CPU time of all threads (steadier on a shared machine, where wall time includes waiting for cores).
  const time = async (conv: GuardMessage[]) => {
    const t0 = process.hrtime.bigint(),
      c0 = process.cpuUsage();
    const v = await guard.check(conv);
    const c = process.cpuUsage(c0);
    return { ms: Number(process.hrtime.bigint() - t0) / 1e6, cpuMs: (c.user + c.system) / 1000, tokens: v.promptTokens };
  };
  await time(input(-1)); // warm-up
  await time(output(-1));
  const inRuns: number[] = [],
    outRuns: number[] = [],
    inCpu: number[] = [],
    outCpu: number[] = [];
  let inTokens = 0,
    outTokens = 0;
  for (let r = 0; r < o.repeat; r++) {
    const a = await time(input(r));
    inRuns.push(a.ms);
    inCpu.push(a.cpuMs);
    inTokens = a.tokens;
    const b = await time(output(r));
    outRuns.push(b.ms);
    outCpu.push(b.cpuMs);
    outTokens = b.tokens;
  }
  Object.assign(out, {
    guard_backend: guardBackend.name,
    threads: (guardBackend as { threads?: number }).threads ?? 1,
    input_screen_ms: median(inRuns),
    input_screen_cpu_ms: median(inCpu),
    input_prompt_tokens: inTokens,
    output_screen_ms: median(outRuns),
    output_screen_cpu_ms: median(outCpu),
    output_prompt_tokens: outTokens,
    input_runs_ms: inRuns,
    output_runs_ms: outRuns,
  });
  if (main) {
    const after: number[] = [],
      afterCpu: number[] = [];
    for (let r = 0; r < o.repeat; r++) {
      const d = decodeRun(main.model, o.gen);
      after.push(d.tps);
      afterCpu.push(d.cpuMs);
    }
    Object.assign(out, {
      model: o.model,
      decode_tps_without_guard: median(before),
      decode_tps_guard_idle: median(after),
      idle_ratio: median(after) / median(before),
      decode_cpu_ms_per_token_without_guard: median(beforeCpu),
      decode_cpu_ms_per_token_guard_idle: median(afterCpu),
      decode_runs_without: before,
      decode_runs_idle: after,
      gen: o.gen,
    });
  }
  if (o.json) process.stdout.write(JSON.stringify(out) + '\n');
  else {
    const f = (x: number) => x.toFixed(1);
    process.stdout.write(
      `guard    ${o.guard} (${out.guard_backend}, ${out.threads} thread${out.threads === 1 ? '' : 's'})\n` +
        `input    +${f(median(inRuns))} ms per request, ${f(median(inCpu))} CPU ms (guard prompt ${inTokens} tokens, median of ${o.repeat})\n` +
        `output   +${f(median(outRuns))} ms per request, ${f(median(outCpu))} CPU ms (guard prompt ${outTokens} tokens, median of ${o.repeat})\n` +
        (main
          ? `decode   ${o.model}: ${f(median(before))} tok/s without the guard, ${f(median(out.decode_runs_idle as number[]))} tok/s with it loaded and idle (ratio ${(out.idle_ratio as number).toFixed(3)}, tg${o.gen}, median of ${o.repeat})\n` +
            `         CPU ms per token ${f(median(beforeCpu))} without, ${f(out.decode_cpu_ms_per_token_guard_idle as number)} with the idle guard\n`
          : ''),
    );
  }
  return 0;
}
