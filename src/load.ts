/**
 * The composition root: the only module that names concrete file formats and backends.
 * `loadModel(path)` reads a Hugging Face folder (config.json + safetensors, single or sharded) or a GGUF file,
 * picks a backend (native when it loads, else TypeScript), and returns the model with its facts.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Backend, BulkQuantizer, KvType, RawTensor } from './tensor/index.ts';
import { TsBackend } from './kernels/ts/index.ts';
import { MappedFile, canMmap, nativeCoreInfo, tryCreateNativeBackend, tryCreateNativeQuantizer } from './kernels/native/index.ts';
import type { TrainBackend } from './tensor/train-backend.ts';
import { TsTrainBackend } from './kernels/ts/train-ops.ts';
import { type TrainProducts, tryCreateNativeTrainBackend } from './kernels/native/train-backend.ts';
import { openSafetensors } from './io/safetensors.ts';
import type { Llama4Config } from './model/llama4/config.ts';
import { parseHfConfig } from './model/llama4/config.ts';
import { loadHfTextTensors } from './model/llama4/weights.ts';
import { isGgufFile, readGguf, readGgufHeader, type GgufFile } from './io/gguf/index.ts';
import type { Tokenizer } from './tokenizer/index.ts';
import { loadTokenizer, tokenizerFromGguf } from './tokenizer/index.ts';
import { loadChatTemplate, templateFromConfigValue, type ChatTemplateSource } from './chat/index.ts';
import type { Llama4VisionEncoder } from './model/llama4/vision.ts';
import { loadVisionEncoder } from './model/llama4/vision.ts';
import { mmprojEncoder } from './model/llama4/vision-gguf.ts';
export {
  attentionFlops,
  randomVisionTensors,
  scoutVisionConfig,
  timeVisionTile,
  visionMatmulFlops,
  type VisionTileRuns,
} from './model/llama4/vision-bench.ts';
import type { ImagePromptEncoder } from './model/types.ts';
import { llama4FromGguf } from './model/llama4/gguf-config.ts';
import { Llama4TextModel } from './model/llama4/text-model.ts';
import { ModelFileError, UsageError, fieldReader } from './util/index.ts';
import type { SamplerOptions } from './engine/sampler.ts';
import { createChatEngine, type ChatEngine } from './engine/chat-engine.ts';
import { ChatSession, type ChatSessionOptions } from './engine/chat-session.ts';
import type { SchedulerOptions } from './engine/scheduler.ts';

export type { Llama4Config } from './model/llama4/config.ts';

/** The model shipped with the package (models/default), used when no -m is given. */
export const DEFAULT_MODEL_DIR = fileURLToPath(new URL('../models/default/', import.meta.url));

export type BackendChoice = 'auto' | 'typescript' | 'native';

export interface LoadOptions {
  backend?: BackendChoice;
  /** Compute threads for the native backend (default: all cores). */
  threads?: number;
  /** Called with a fraction 0..1 while weights load. */
  onProgress?: (fraction: number, what: string) => void;
  /** llama.cpp multimodal projector GGUF (vision tower) to use with a GGUF text model. */
  mmproj?: string;
  /** KV cache storage: f32 (default, exact), f16 or q8_0 (smaller caches, longer contexts; see TextModelOptions). */
  kvType?: KvType;
  /**
   * Compute on this backend instead of creating one (two models in one thread share one native thread pool); it
   * stays its creator's: disposing this model leaves it alone.
   */
  sharedBackend?: Backend;
}

export interface LoadedModel {
  readonly model: Llama4TextModel;
  readonly config: Llama4Config;
  readonly path: string;
  readonly format: 'safetensors' | 'gguf';
  readonly backend: Backend;
  /** Folder holding tokenizer files next to the weights (HF layouts), or null. */
  readonly tokenizerDir: string | null;
  /** Why the native backend is not in use, when it was wanted (printed by the CLI). */
  readonly backendNote: string | null;
  /** The vision tower + projector when the checkpoint has one (early fusion), else null. */
  readonly vision: Llama4VisionEncoder | null;
  /** Sampling defaults from generation_config.json (temperature, top_p, top_k; do_sample false = greedy). */
  readonly samplingDefaults: SamplerOptions;
  /** Early fusion through `vision` (with a feature cache), or null for text-only models. */
  readonly images: ImagePromptEncoder | null;
  /**
   * A conversation with this model: history, KV-cache reuse across turns, streaming, tools, images, AbortSignal
   * (see ChatSession). Sessions share one engine with one slot; they are disposed with the model.
   */
  createChat(o?: ChatSessionOptions): ChatSession;
  /**
   * A chat engine on this model (what the server and ChatSession run turns through), with its own scheduler; the
   * tokenizer and template come from beside the weights unless `tokenizerPath` / `chatTemplate` say otherwise.
   */
  createChatEngine(o?: ChatEngineLoadOptions): ChatEngine;
  /**
   * Frees the model now rather than at garbage collection: stops its chats, the compute threads, natively allocated
   * weight copies and the file mappings. Using the model afterwards throws UsageError. Safe to call twice.
   */
  dispose(): void;
  readonly disposed: boolean;
}

export interface ChatEngineLoadOptions extends SchedulerOptions {
  /** Folder or file with the tokenizer, when it is not beside the weights. */
  tokenizerPath?: string;
  /** Jinja chat template text overriding the model's. */
  chatTemplate?: string;
  /** The id the server lists (default: the file or folder name). */
  modelId?: string;
  /** Special-token text in messages becomes control tokens (the reference's behaviour; see ChatEngineOptions). */
  specialTokensInMessages?: boolean;
}

/** What a load produced, before the methods that use and release it are attached. */
type LoadedParts = Omit<LoadedModel, 'createChat' | 'createChatEngine' | 'dispose' | 'disposed' | 'images'>;

/** The engine sessions of `createChat` share: one slot, and prompts prefilled 512 tokens per step (as `generate`). */
const CHAT_ENGINE_OPTIONS: SchedulerOptions = { parallel: 1, stepTokens: 512 };

/** Attaches chats and dispose() to a load: `mapped` are the files its weights are views of. */
function finishLoad(parts: LoadedParts, mapped: readonly MappedFile[], ownsBackend = true): LoadedModel {
  // Weak: engines and sessions a caller dropped are not kept alive by the model; dispose() reaches the rest.
  const engines = new Set<WeakRef<ChatEngine>>();
  let chatEngine: ChatEngine | null = null;
  let disposed = false;
  const live = () => {
    if (disposed) throw new UsageError('the model was disposed');
  };
  // The image path (decoding through sharp) loads on first use: text-only work never imports it.
  let encodeImages: ImagePromptEncoder | null = null;
  const vision = parts.vision;
  const loaded: LoadedModel = {
    ...parts,
    images: vision
      ? async (tokens, images) => {
          live();
          encodeImages ??= (await import('./model/llama4/vision-prompt.ts')).imagePromptEncoder(vision);
          return encodeImages(tokens, images);
        }
      : null,
    get disposed() {
      return disposed;
    },
    createChatEngine(o = {}) {
      live();
      const { tokenizer, chatTemplate } = loadChatAssets(loaded, o.tokenizerPath);
      const { tokenizerPath: _t, chatTemplate: _c, modelId, ...scheduling } = o;
      const engine = createChatEngine({
        ...scheduling,
        modelId: modelId ?? basename(parts.path.replace(/\/+$/, '')).replace(/\.gguf$/, ''),
        model: parts.model,
        tokenizer,
        chatTemplate: o.chatTemplate ?? chatTemplate,
        samplingDefaults: parts.samplingDefaults,
        ...(loaded.images ? { images: loaded.images } : {}),
      });
      engines.add(new WeakRef(engine));
      return engine;
    },
    createChat(o = {}) {
      live();
      chatEngine ??= loaded.createChatEngine(CHAT_ENGINE_OPTIONS);
      return new ChatSession(chatEngine, { ...o, defaults: parts.samplingDefaults, alive: () => !disposed });
    },
    dispose() {
      if (disposed) return;
      disposed = true;
      // Closing a scheduler cancels its running turns (their sessions get finishReason 'cancelled').
      for (const e of engines) e.deref()?.scheduler.close();
      engines.clear();
      chatEngine = null;
      parts.model.dispose();
      if (ownsBackend) parts.backend.dispose?.(); // a shared backend belongs to the model that made it
      for (const m of mapped) m.close();
    },
  };
  return loaded;
}

/** Llama 4 instruct's generation_config.json values, used when a model ships none. */
const LLAMA4_SAMPLING: SamplerOptions = { temperature: 0.6, topP: 0.9 };

/** The sampling defaults of a model path without loading it (the server reads them beside a worker-loaded model). */
export function samplingDefaultsOf(path: string): SamplerOptions {
  const genFile = join(path, 'generation_config.json');
  return existsSync(path) && statSync(path).isDirectory() && existsSync(genFile) ? samplingFrom(readJson(genFile)) : LLAMA4_SAMPLING;
}

function samplingFrom(gen: unknown): SamplerOptions {
  if (!gen || typeof gen !== 'object') return LLAMA4_SAMPLING;
  const g = gen as Record<string, unknown>;
  if (g['do_sample'] === false) return { temperature: 0 };
  const o: SamplerOptions = { ...LLAMA4_SAMPLING };
  if (typeof g['temperature'] === 'number') o.temperature = g['temperature'];
  if (typeof g['top_p'] === 'number') o.topP = g['top_p'];
  if (typeof g['top_k'] === 'number') o.topK = g['top_k'];
  if (typeof g['min_p'] === 'number') o.minP = g['min_p'];
  if (typeof g['repetition_penalty'] === 'number') o.repetitionPenalty = g['repetition_penalty'];
  return o;
}

function readJson(file: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new ModelFileError(file, `not valid JSON (${(e as Error).message})`);
  }
}

/**
 * Picks the compute backend: the native core when its addon loads (auto), else the TypeScript reference with a
 * one-line note saying why. `native` insists and fails with that reason.
 */
export async function createBackend(choice: BackendChoice = 'auto', threads?: number): Promise<{ backend: Backend; note: string | null }> {
  if (choice === 'typescript') return { backend: new TsBackend(), note: null };
  const { backend, reason } = tryCreateNativeBackend(threads !== undefined ? { threads } : {});
  if (backend) return { backend, note: null };
  const note = `native backend unavailable (${reason}); using the TypeScript backend`;
  if (choice === 'native') throw new UsageError(note);
  return { backend: new TsBackend(), note };
}

/**
 * The training backend (src/tensor/train-backend.ts): native when its addon loads, else the TypeScript reference.
 * `products: 'bf16'` asks for the native core's mixed-precision products (an error where there are none).
 */
export function createTrainBackend(
  choice: BackendChoice = 'auto',
  threads = 2,
  products: TrainProducts = 'f32',
): { backend: TrainBackend; note: string | null } {
  if (choice === 'typescript') {
    if (products === 'bf16') throw new UsageError('bf16 products need the native training backend');
    return { backend: new TsTrainBackend(), note: null };
  }
  const { backend, reason } = tryCreateNativeTrainBackend(threads, undefined, products);
  if (!backend && products === 'bf16') throw new UsageError(`bf16 products unavailable: ${reason}`);
  if (backend) return { backend, note: null };
  const note = `native training backend unavailable (${reason}); training in TypeScript`;
  if (choice === 'native') throw new UsageError(note);
  return { backend: new TsTrainBackend(), note };
}

/**
 * The weight quantizer for the GGUF writer (model-files WriteOptions.quantizer): the native core's when its addon
 * loads (same bytes, far faster), else null, and the writer quantizes in TypeScript. The caller closes it.
 */
export function createQuantizer(threads?: number): BulkQuantizer | null {
  return tryCreateNativeQuantizer(threads).quantizer;
}

/**
 * The backend `createBackend('auto')` would pick on this machine, as one line for `llama4 --version`:
 * `native-avx512 (native/build/Release/llama4_native.node; kernel sets avx512, avx2, scalar)` or
 * `typescript (native core not built: …)`.
 */
export function describeDefaultBackend(): string {
  const n = nativeCoreInfo();
  return n.isa ? `native-${n.isa} (${n.file}; kernel sets ${n.isas.join(', ')})` : `typescript (${n.reason})`;
}

const modelOptions = (opts: LoadOptions) => (opts.kvType !== undefined ? { kvType: opts.kvType } : {});

export async function loadModel(path: string = DEFAULT_MODEL_DIR, opts: LoadOptions = {}): Promise<LoadedModel> {
  if (!existsSync(path)) throw new ModelFileError(path, 'no such file or folder');
  const owns = !opts.sharedBackend;
  const { backend, note } = opts.sharedBackend
    ? { backend: opts.sharedBackend, note: null }
    : await createBackend(opts.backend, opts.threads);
  const mapped: MappedFile[] = [];
  try {
    return finishLoad(readModel(path, opts, backend, note, mapped), mapped, owns);
  } catch (e) {
    // A load that fails keeps nothing: the pool's threads and the mappings go now, not at garbage collection.
    if (owns) backend.dispose?.();
    for (const m of mapped) m.close();
    throw e;
  }
}

/** The model, its config and vision tower from a folder or a GGUF; `mapped` collects the files it maps. */
function readModel(path: string, opts: LoadOptions, backend: Backend, note: string | null, mapped: MappedFile[]): LoadedParts {
  if (statSync(path).isDirectory()) {
    const cfgFile = join(path, 'config.json');
    if (!existsSync(cfgFile)) throw new ModelFileError(path, 'not a model folder: config.json is missing');
    const genFile = join(path, 'generation_config.json');
    const configJson = readJson(cfgFile);
    const gen = existsSync(genFile) ? readJson(genFile) : undefined;
    const config = parseHfConfig(configJson, gen);
    opts.onProgress?.(0, 'reading weights');
    // Mapped where the native core can map files: tensors used as stored (attention, norms, embeddings, shared
    // experts) are read in place; routed-expert stacks are transposed into memory (HF stores them [E, in, out]).
    const src = openSafetensors(
      path,
      canMmap()
        ? {
            mapFile: (f) => {
              const m = MappedFile.open(f);
              mapped.push(m);
              return (o, n) => m.bytes(o, n);
            },
          }
        : {},
    );
    const tensors = loadHfTextTensors(config, src, path);
    const model = new Llama4TextModel(config, tensors, backend, path, modelOptions(opts));
    const vision = loadVisionEncoder(configJson, src, backend, path);
    opts.onProgress?.(1, 'ready');
    return {
      model,
      config,
      path,
      format: 'safetensors',
      backend,
      tokenizerDir: path,
      backendNote: note,
      vision,
      samplingDefaults: samplingFrom(gen),
    };
  }
  if (path.endsWith('.gguf') || isGgufFile(path)) {
    // GGUF (llama.cpp layout): metadata -> Llama4Config, `<name>.weight` -> internal names; tensors stay quantized.
    opts.onProgress?.(0, 'reading weights');
    const file = readGgufMapped(path, mapped) ?? readGguf(path);
    const { config, tensors } = llama4FromGguf(file.metadata, file.tensorData, path);
    const model = new Llama4TextModel(config, tensors, backend, path, modelOptions(opts));
    let vision: Llama4VisionEncoder | null = null;
    if (opts.mmproj) {
      const f = readGguf(opts.mmproj, (n) => n.startsWith('v.') || n.startsWith('mm.'));
      vision = mmprojEncoder(
        f.metadata,
        f.tensorData,
        backend,
        config.imageTokenId !== null ? { imageTokenId: config.imageTokenId } : {},
        {},
        opts.mmproj,
      );
    }
    opts.onProgress?.(1, 'ready');
    return {
      model,
      config,
      path,
      format: 'gguf',
      backend,
      tokenizerDir: null,
      backendNote: note,
      vision,
      samplingDefaults: LLAMA4_SAMPLING,
    };
  }
  throw new ModelFileError(path, 'expected a model folder (config.json + *.safetensors) or a .gguf file');
}

/**
 * A GGUF whose tensors are views of a memory-mapped file (no copy; pages load on demand, so models larger than RAM
 * still start), or null when the native addon that maps files is not available.
 */
function readGgufMapped(path: string, files: MappedFile[]): { metadata: GgufFile['metadata']; tensorData: Map<string, RawTensor> } | null {
  if (!canMmap()) return null;
  const header = readGgufHeader(path);
  const mapped = MappedFile.open(path);
  files.push(mapped);
  const tensorData = new Map<string, RawTensor>();
  for (const t of header.tensors.values()) {
    tensorData.set(t.name, { name: t.name, dtype: t.dtype, shape: t.shape, bytes: mapped.bytes(t.fileOffset, t.byteLength) });
  }
  return { metadata: header.metadata, tensorData };
}

/** The tokenizer and chat template that go with a loaded model. */
export interface ChatAssets {
  readonly tokenizer: Tokenizer;
  /** Jinja chat template text (tokenizer_config.json, chat_template.jinja or GGUF metadata), or null. */
  readonly chatTemplate: string | null;
}

/**
 * Reads the tokenizer and chat template beside the weights: tokenizer.json / tokenizer.model and
 * tokenizer_config.json / chat_template.jinja in a folder, tokenizer.ggml.* and tokenizer.chat_template in a GGUF.
 * `tokenizerPath` overrides where the tokenizer (and its template) come from.
 */
export function loadChatAssets(
  loaded: Pick<LoadedModel, 'format' | 'path' | 'tokenizerDir'> & { readonly config: { readonly vocabSize: number } },
  tokenizerPath?: string,
): ChatAssets {
  const from = tokenizerPath ?? (loaded.format === 'gguf' ? loaded.path : (loaded.tokenizerDir ?? loaded.path));
  return { tokenizer: loadTokenizerFrom(from, loaded.config.vocabSize), chatTemplate: loadChatTemplateFrom(from)?.template ?? null };
}

const isGgufPath = (path: string) => statSync(path).isFile() && (path.endsWith('.gguf') || isGgufFile(path));

/** A tokenizer from a model folder, a tokenizer file, or a GGUF's metadata (header only, no weights read). */
export function loadTokenizerFrom(path: string, vocabSize?: number): Tokenizer {
  if (!existsSync(path)) throw new UsageError(`not found: ${path}`);
  if (!isGgufPath(path)) return loadTokenizer(path);
  const md = readGgufHeader(path).metadata;
  const num = fieldReader((k) => md.get(k), { where: path }).optNum;
  const tokens = md.get('tokenizer.ggml.tokens');
  if (!Array.isArray(tokens)) throw new ModelFileError(path, 'the GGUF has no tokenizer (tokenizer.ggml.tokens)');
  const merges = md.get('tokenizer.ggml.merges');
  const types = md.get('tokenizer.ggml.token_type');
  const bos = num('tokenizer.ggml.bos_token_id');
  const eos = num('tokenizer.ggml.eos_token_id');
  const pre = md.get('tokenizer.ggml.pre');
  return tokenizerFromGguf({
    tokens: tokens as string[],
    ...(Array.isArray(merges) ? { merges: merges as string[] } : {}),
    ...(types && typeof types === 'object' && 'length' in types ? { tokenTypes: Array.from(types as ArrayLike<number>) } : {}),
    ...(bos !== undefined ? { bosId: bos } : {}),
    ...(eos !== undefined ? { eosId: eos } : {}),
    extraEosIds: [num('tokenizer.ggml.eot_token_id'), num('tokenizer.ggml.eom_token_id')].filter((x): x is number => x !== undefined),
    ...(vocabSize !== undefined ? { vocabSize } : {}),
    ...(typeof pre === 'string' ? { pre } : {}),
    source: path,
  });
}

/** The chat template of a model folder or GGUF (tokenizer.chat_template), or undefined when it has none. */
export function loadChatTemplateFrom(path: string): ChatTemplateSource | undefined {
  if (!existsSync(path)) throw new UsageError(`not found: ${path}`);
  if (isGgufPath(path)) {
    const t = readGgufHeader(path).metadata.get('tokenizer.chat_template');
    return t === undefined ? undefined : templateFromConfigValue(t, path);
  }
  return statSync(path).isDirectory() ? loadChatTemplate(path) : undefined;
}
