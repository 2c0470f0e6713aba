/**
 * Continuous batching over a CausalLM.
 *
 * Every step runs ONE forward() with one ForwardItem per active sequence: decoding sequences add their last token,
 * sequences still prefilling add a chunk of their prompt (bounded by a per-step token budget, so that a long prompt
 * does not stall everyone else's decoding). Requests that arrive while others decode are admitted at the next step.
 * Between steps the loop yields to the event loop (setImmediate), so HTTP handlers, /health and client disconnects
 * are served while the model generates. forward() may also return a promise (a model in a worker thread): the event
 * loop then stays free for the whole step, not only between steps.
 *
 * Other duties:
 * - bounded queue: `submit` throws QueueFullError when `maxQueue` requests already wait (the server answers 429);
 * - cancellation: a request's AbortSignal drops it from the queue or from the batch at the next step boundary;
 * - prompt-prefix reuse: finished sequences are kept (a few, LRU) with the tokens they hold; a new prompt that shares
 *   a prefix takes the best one and truncates it. Llama 4's chunked-attention layers keep only the current chunk,
 *   so truncate() can refuse (returns false) — then the request starts from a fresh sequence;
 * - n > 1: the prompt is prefilled once, then the sequence is cloned for each further choice;
 * - every sequence the scheduler drops (not kept, evicted, refused truncation) is released with seq.free?.().
 */
import type { AsyncCausalLM, ForwardItem, SequenceState } from '../model/types.ts';
import { UsageError } from '../util/index.ts';
import { makeSampler } from './sampler.ts';
import { yieldToEventLoop, type FinishReason } from './common.ts';
import { tokenLogprobs, type SamplingOptions, type TokenPicker, type TopLogprob } from './scheduler-sampling.ts';

export type { SamplingOptions, TokenPicker, TopLogprob } from './scheduler-sampling.ts';
export type { FinishReason } from './common.ts';

/** Restricts which token may come next (constrained decoding); one instance per choice. */
export interface TokenConstraint {
  /**
   * Optional: starts computing what mask() will need for the current state, asynchronously and in slices (JSON
   * schema masks can take up to a second on a 200k vocabulary). The scheduler calls it beside each step's forward
   * pass, so that work overlaps the model (in a worker thread) and never holds the event loop; it must not reject
   * (a failure is rethrown by mask()). mask() works without it, computing at once.
   */
  prepare?(): Promise<void> | void;
  /** Sets the logits of tokens that may not come next to -Infinity (in place). */
  mask(logits: Float32Array): void;
  /** Advances past the chosen token. */
  accept(token: number): void;
  /** True once the constrained output is complete; the choice then finishes with 'stop'. */
  readonly done: boolean;
}

export interface TokenInfo {
  token: number;
  /** Present when the request asked for logprobs: log-softmax of the raw logits row. */
  logprob?: number;
  top?: TopLogprob[];
}

export interface GenerationRequest {
  /** Prompt token ids (already including BOS and the chat template's special tokens). */
  prompt: readonly number[];
  /** Image features for the prompt's image-token slots: [nImageTokens, hiddenSize] (see ForwardItem). */
  patchEmbeddings?: Float32Array;
  /** Completion token limit per choice. */
  maxTokens: number;
  /** Number of choices (default 1). */
  n?: number;
  sampling?: SamplingOptions;
  /** Tokens that end a choice (default: the model's EOS ids). They are not reported through onToken. */
  stopTokens?: readonly number[];
  /** undefined: no logprobs; k ≥ 0: the chosen token's logprob plus the k best alternatives. */
  topLogprobs?: number;
  /** Called once per choice to build its constraint (response_format). */
  constraint?: () => TokenConstraint;
  signal?: AbortSignal;
  /** One generated token of one choice. Return true to finish that choice with 'stop' (a stop string matched). */
  onToken?(choice: number, info: TokenInfo): boolean | void;
  /** Called when the request leaves the queue and its prefill starts. */
  onStart?(): void;
  /**
   * Penalties (repetition, presence, frequency) count the prompt's tokens as well as the generated ones, as HF's
   * repetition_penalty over input_ids does (`llama4 run`, ChatSession). Default false: generated tokens only (OpenAI).
   */
  penalizePrompt?: boolean;
}

export interface GenerationResult {
  promptTokens: number;
  /** Prompt tokens that came from a reused prefix instead of being computed. */
  cachedTokens: number;
  choices: { finishReason: FinishReason; completionTokens: number; error?: Error }[];
}

/** The queue is full; retry after `retryAfterS` seconds. */
export class QueueFullError extends UsageError {
  override readonly name: 'UsageError' = 'UsageError';
  constructor(readonly retryAfterS: number) {
    super(`the server is busy: the request queue is full; retry in ${retryAfterS} s`);
  }
}

export interface SchedulerOptions {
  /** Sequences decoded together (each choice of n > 1 counts). Default 4. */
  parallel?: number;
  /** Requests that may wait for a slot before submit() refuses. Default 64. */
  maxQueue?: number;
  /** Tokens one step may process in all (decode tokens first, then prefill chunks). Default 128: a step holds the
   * event loop (HTTP, /health, other clients' tokens) for its whole duration. */
  stepTokens?: number;
  /** Context limit: prompt + completion must fit. Default model.info.contextLength. */
  contextLength?: number;
  /** Finished sequences kept for prefix reuse. Default `parallel`. 0 disables reuse. */
  prefixCacheSize?: number;
  /** Builds a token picker from a request's sampling options (default: the shared sampler, engine/sampler.ts). */
  makePicker?: (o: SamplingOptions) => TokenPicker;
}

export interface SchedulerStats {
  active: number;
  queued: number;
  steps: number;
  promptTokensComputed: number;
  promptTokensReused: number;
  generatedTokens: number;
  cachedSequences: number;
  cacheBytes: number;
}

interface Job {
  req: GenerationRequest;
  n: number;
  result: GenerationResult;
  remaining: number;
  resolve(r: GenerationResult): void;
  cancelled: boolean;
  pickers: TokenPicker[];
}

/** One active sequence: choice `choice` of `job`. */
interface Slot {
  job: Job;
  choice: number;
  seq: SequenceState;
  /** Tokens to feed at the next steps (prompt remainder during prefill, then the last sampled token). */
  pending: number[];
  /** Rows of patch embeddings not yet fed, aligned with image tokens in `pending`. */
  patches: Float32Array | null;
  /** Every token fed to `seq` so far (the key for prefix reuse); `reusable` bounds how much of it may be reused. */
  fed: number[];
  reusable: number;
  prefilling: boolean;
  generated: number[];
  /** What the picker's penalties see: `generated`, or the prompt followed by it (penalizePrompt). */
  history: number[];
  constraint: TokenConstraint | null;
  done: boolean;
}

interface CachedPrefix {
  tokens: number[];
  reusable: number;
  seq: SequenceState;
}

export class Scheduler {
  readonly parallel: number;
  readonly maxQueue: number;
  readonly contextLength: number;
  private readonly stepTokens: number;
  private readonly prefixCacheSize: number;
  private readonly makePicker: (o: SamplingOptions) => TokenPicker;
  private readonly queue: Job[] = [];
  private slots: Slot[] = [];
  private prefixes: CachedPrefix[] = [];
  private running = false;
  private closed = false;
  private readonly counters = { steps: 0, promptTokensComputed: 0, promptTokensReused: 0, generatedTokens: 0 };

  constructor(
    readonly model: AsyncCausalLM,
    o: SchedulerOptions = {},
  ) {
    this.parallel = o.parallel ?? 4;
    this.maxQueue = o.maxQueue ?? 64;
    this.stepTokens = Math.max(o.stepTokens ?? 128, this.parallel);
    this.contextLength = o.contextLength ?? model.info.contextLength;
    this.prefixCacheSize = o.prefixCacheSize ?? this.parallel;
    this.makePicker =
      o.makePicker ??
      ((so) => {
        const s = makeSampler(so);
        return { pick: (logits, history) => s.sample(logits, history) };
      });
    if (!(this.parallel >= 1)) throw new UsageError(`parallel must be at least 1, got ${this.parallel}`);
  }

  /**
   * Queues a request. Throws UsageError for requests that can never run (prompt too long, n > parallel) and
   * QueueFullError when the queue is full; otherwise resolves when every choice has finished (also when cancelled).
   */
  submit(req: GenerationRequest): Promise<GenerationResult> {
    if (this.closed) throw new UsageError('the server is shutting down');
    const n = req.n ?? 1;
    if (!Number.isInteger(n) || n < 1) throw new UsageError(`n must be a positive integer, got ${n}`);
    if (n > this.parallel) throw new UsageError(`n = ${n} exceeds this server's parallel slots (${this.parallel})`);
    if (req.prompt.length === 0) throw new UsageError('the prompt is empty');
    if (req.prompt.length >= this.contextLength) {
      throw new UsageError(
        `the prompt has ${req.prompt.length} tokens, but the context holds ${this.contextLength} (prompt + at least one generated token)`,
      );
    }
    if (!(req.maxTokens >= 1)) throw new UsageError(`max_tokens must be at least 1, got ${req.maxTokens}`);
    const vocab = this.model.info.vocabSize;
    for (const t of req.prompt)
      if (!Number.isInteger(t) || t < 0 || t >= vocab)
        throw new UsageError(`prompt token ${t} is outside the vocabulary (0..${vocab - 1})`);
    if (this.queue.length >= this.maxQueue) throw new QueueFullError(Math.max(1, Math.ceil(this.queue.length / this.parallel)));
    // Pickers are built here so that bad sampling options fail the request, not the loop. Choice c uses seed + c.
    const seed = req.sampling?.seed;
    const pickers = Array.from({ length: n }, (_, c) =>
      this.makePicker({ ...req.sampling, ...(seed !== undefined ? { seed: seed + c } : {}) }),
    );
    return new Promise<GenerationResult>((resolve) => {
      const job: Job = {
        req,
        n,
        remaining: n,
        resolve,
        cancelled: false,
        pickers,
        result: {
          promptTokens: req.prompt.length,
          cachedTokens: 0,
          choices: Array.from({ length: n }, () => ({ finishReason: 'stop' as FinishReason, completionTokens: 0 })),
        },
      };
      if (req.signal) {
        if (req.signal.aborted) job.cancelled = true;
        req.signal.addEventListener('abort', () => this.cancel(job), { once: true });
      }
      this.queue.push(job);
      this.kick();
    });
  }

  stats(): SchedulerStats {
    return {
      active: this.slots.length,
      queued: this.queue.length,
      ...this.counters,
      cachedSequences: this.prefixes.length,
      cacheBytes: this.prefixes.reduce((s, p) => s + p.seq.cacheBytes(), 0) + this.slots.reduce((s, x) => s + x.seq.cacheBytes(), 0),
    };
  }

  /** Drops the kept prefixes and releases their caches. */
  clearPrefixCache(): void {
    for (const p of this.prefixes) p.seq.free?.();
    this.prefixes = [];
  }

  /** Refuses new work and cancels everything queued or running. */
  close(): void {
    this.closed = true;
    for (const j of [...this.queue]) this.cancel(j);
    for (const s of this.slots) s.job.cancelled = true;
    this.clearPrefixCache();
  }

  private cancel(job: Job): void {
    job.cancelled = true;
    const qi = this.queue.indexOf(job);
    if (qi >= 0) {
      this.queue.splice(qi, 1);
      for (const c of job.result.choices) c.finishReason = 'cancelled';
      job.resolve(job.result);
    }
    this.kick();
  }

  private kick(): void {
    if (this.running) return;
    this.running = true;
    setImmediate(() => void this.loop());
  }

  private async loop(): Promise<void> {
    try {
      while (this.queue.length > 0 || this.slots.length > 0) {
        try {
          await this.step();
        } catch (e) {
          // A bug outside forward() (sampling, a constraint, a callback) fails the running requests, never the process.
          const err = e instanceof Error ? e : new Error(String(e));
          for (const s of this.slots) this.finish(s, 'error', err);
          this.slots = [];
        }
        await yieldToEventLoop();
      }
    } finally {
      this.running = false;
    }
  }

  /** One scheduling step: drop cancelled work, admit queued requests, run one batched forward, sample. */
  private async step(): Promise<void> {
    for (const s of this.slots) if (s.job.cancelled && !s.done) this.finish(s, 'cancelled');
    this.slots = this.slots.filter((s) => !s.done);
    while (this.queue.length > 0) {
      const job = this.queue[0]!;
      if (job.cancelled) {
        this.queue.shift();
        continue;
      }
      if (this.slots.length + job.n > this.parallel) break;
      this.queue.shift();
      this.admit(job);
    }
    if (this.slots.length === 0) return;

    // Budget: every decoding slot gets its one token; prefilling slots share what is left, oldest first.
    const items: ForwardItem[] = [];
    const owners: { slot: Slot; fed: number; last: boolean }[] = [];
    let budget = this.stepTokens - this.slots.filter((s) => !s.prefilling).length;
    for (const s of this.slots) {
      let take: number;
      if (!s.prefilling) take = 1;
      else {
        if (budget <= 0) continue;
        take = Math.min(s.pending.length, budget);
        budget -= take;
      }
      const tokens = s.pending.slice(0, take);
      const last = take === s.pending.length;
      let patchEmbeddings: Float32Array | undefined;
      if (s.patches && s.patches.length > 0) {
        const imageId = this.model.info.imageTokenId;
        const nImg = tokens.reduce((c, t) => c + (t === imageId ? 1 : 0), 0);
        if (nImg > 0) {
          const h = this.model.info.hiddenSize;
          patchEmbeddings = s.patches.subarray(0, nImg * h);
          s.patches = s.patches.subarray(nImg * h);
        }
      }
      items.push({ seq: s.seq, tokens, logits: last ? 'last' : 'none', ...(patchEmbeddings ? { patchEmbeddings } : {}) });
      owners.push({ slot: s, fed: take, last });
    }
    // Constraints of the slots that sample after this pass prepare their masks while it runs.
    const preparing: Promise<void>[] = [];
    for (const o of owners) {
      const p = o.last ? o.slot.constraint?.prepare?.() : undefined;
      if (p) preparing.push(p);
    }
    let out: Float32Array[];
    try {
      out = await this.model.forward(items);
      if (preparing.length) await Promise.all(preparing);
    } catch (e) {
      // A failing batch fails its requests, never the server.
      const err = e instanceof Error ? e : new Error(String(e));
      for (const o of owners) this.finish(o.slot, 'error', err);
      this.slots = this.slots.filter((s) => !s.done);
      return;
    }
    this.counters.steps++;
    for (let i = 0; i < owners.length; i++) {
      const { slot, fed, last } = owners[i]!;
      const tokens = slot.pending.splice(0, fed);
      for (const t of tokens) slot.fed.push(t);
      if (slot.prefilling) this.counters.promptTokensComputed += fed;
      if (!last) continue;
      const logits = out[i]!;
      const row = logits.subarray(logits.length - this.model.info.vocabSize);
      if (slot.prefilling) {
        slot.prefilling = false;
        // n > 1: every further choice starts from a copy of the prefilled sequence and samples from the same row.
        for (let c = 1; c < slot.job.n; c++) {
          const generated: number[] = [];
          const clone: Slot = {
            ...slot,
            choice: c,
            seq: slot.seq.clone(),
            fed: [...slot.fed],
            generated,
            history: slot.job.req.penalizePrompt ? [...slot.job.req.prompt] : generated,
            pending: [],
          };
          clone.constraint = slot.job.req.constraint ? slot.job.req.constraint() : null;
          this.slots.push(clone);
          this.safeSample(clone, row);
        }
      }
      this.safeSample(slot, row);
    }
    this.slots = this.slots.filter((s) => !s.done);
  }

  private admit(job: Job): void {
    const req = job.req;
    const imageId = this.model.info.imageTokenId;
    // Prefix reuse stops at the first image token: equal token ids there do not mean equal images.
    let reusable = Infinity;
    if (imageId !== null && req.patchEmbeddings) {
      const k = req.prompt.indexOf(imageId);
      if (k >= 0) reusable = k;
    }
    let seq: SequenceState | null = null;
    let start = 0;
    // Best kept prefix; at least one prompt token must still be fed to get logits for the first new token.
    let bestI = -1;
    let bestLen = 0;
    for (let i = 0; i < this.prefixes.length; i++) {
      const p = this.prefixes[i]!;
      const lim = Math.min(p.reusable, reusable, req.prompt.length - 1, p.seq.length);
      let k = 0;
      while (k < lim && p.tokens[k] === req.prompt[k]) k++;
      if (k > bestLen) {
        bestLen = k;
        bestI = i;
      }
    }
    if (bestI >= 0) {
      const p = this.prefixes.splice(bestI, 1)[0]!;
      if (p.seq.truncate(bestLen)) {
        seq = p.seq;
        start = bestLen;
      } else p.seq.free?.();
    }
    seq ??= this.model.newSequence();
    const generated: number[] = [];
    job.result.cachedTokens = start;
    this.counters.promptTokensReused += start;
    // Patch rows for image tokens already inside the reused prefix are skipped (reuse stops before images, so none).
    this.slots.push({
      job,
      choice: 0,
      seq,
      pending: req.prompt.slice(start),
      patches: req.patchEmbeddings ?? null,
      fed: req.prompt.slice(0, start),
      reusable,
      prefilling: true,
      generated,
      history: req.penalizePrompt ? [...req.prompt] : generated,
      constraint: req.constraint ? req.constraint() : null,
      done: false,
    });
    req.onStart?.();
  }

  /** sample(), with a failure (a broken constraint or callback) confined to its own choice. */
  private safeSample(slot: Slot, raw: Float32Array): void {
    try {
      this.sample(slot, raw);
    } catch (e) {
      this.finish(slot, 'error', e instanceof Error ? e : new Error(String(e)));
    }
  }

  /** Samples the next token of `slot` from its logits row and decides whether the choice goes on. */
  private sample(slot: Slot, raw: Float32Array): void {
    const job = slot.job;
    const req = job.req;
    if (job.cancelled) return this.finish(slot, 'cancelled');
    let row = raw;
    if (slot.constraint) {
      row = new Float32Array(raw);
      slot.constraint.mask(row);
    }
    const token = job.pickers[slot.choice]!.pick(row, slot.history);
    if (slot.constraint && !(row[token]! > -Infinity)) {
      return this.finish(slot, 'error', new Error('constrained decoding found no allowed token'));
    }
    const stops = req.stopTokens ?? this.model.info.eosTokenIds;
    if (stops.includes(token)) return this.finish(slot, 'stop');
    slot.generated.push(token);
    if (slot.history !== slot.generated) slot.history.push(token);
    this.counters.generatedTokens++;
    job.result.choices[slot.choice]!.completionTokens++;
    slot.constraint?.accept(token);
    const info: TokenInfo = { token };
    if (req.topLogprobs !== undefined) {
      const lp = tokenLogprobs(raw, token, req.topLogprobs);
      info.logprob = lp.logprob;
      info.top = lp.top;
    }
    let stop = false;
    try {
      stop = req.onToken?.(slot.choice, info) === true;
    } catch (e) {
      return this.finish(slot, 'error', e instanceof Error ? e : new Error(String(e)));
    }
    if (stop || slot.constraint?.done) return this.finish(slot, 'stop');
    if (slot.generated.length >= req.maxTokens || slot.seq.length + 1 >= this.contextLength) return this.finish(slot, 'length');
    slot.pending = [token];
  }

  private finish(slot: Slot, reason: FinishReason, error?: Error): void {
    if (slot.done) return;
    slot.done = true;
    const c = slot.job.result.choices[slot.choice]!;
    c.finishReason = reason;
    if (error) c.error = error;
    if (this.prefixCacheSize > 0 && slot.seq.length === slot.fed.length && slot.fed.length > 0 && !this.closed) {
      this.prefixes.push({ tokens: slot.fed, reusable: Math.min(slot.reusable, slot.fed.length), seq: slot.seq });
      while (this.prefixes.length > this.prefixCacheSize) this.prefixes.shift()!.seq.free?.();
    } else slot.seq.free?.();
    if (--slot.job.remaining === 0) slot.job.resolve(slot.job.result);
  }
}
