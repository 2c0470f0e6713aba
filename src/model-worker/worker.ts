/**
 * The model worker's worker side: a worker_threads entry that loads a model with loadModel (same options as
 * in-thread) and serves its compute to the host thread, so that the host's event loop (HTTP, tokenization, sampling,
 * scheduling) never waits for a forward pass. The host side is host.ts; the messages are in protocol.ts. It sees the
 * model only through CausalLM / SequenceState (model/types.ts).
 *
 * Threads: the native backend's pool runs with `threads` threads counting this worker's JS thread (the pool's caller
 * thread), exactly as it counts the main thread in-thread; the main thread sleeps while a step runs.
 */
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { loadModel, type LoadedModel } from '../load.ts';
import type { CausalLM, ForwardItem, ImagePromptEncoder, SequenceState } from '../model/types.ts';
import { toWire, type FromWorker, type SeqFacts, type ToWorker, type WorkerInit } from './protocol.ts';

/** The lowest length `seq` can be truncated to (see SequenceState.truncateFloor). */
const truncateFloor = (seq: SequenceState): number => seq.truncateFloor?.() ?? seq.length;

/** Serves one loaded model over `port` (the worker's parentPort). */
function serveModel(model: CausalLM, encodeImages: ImagePromptEncoder | null) {
  const port = parentPort!;
  const seqs = new Map<number, SequenceState>();
  const broken = new Map<number, Error>();
  const post = (m: FromWorker, transfer: ArrayBuffer[] = []) => port.postMessage(m, transfer);
  const facts = (id: number, ver: number, s: SequenceState): SeqFacts => ({
    seq: id,
    ver,
    length: s.length,
    floor: truncateFloor(s),
    bytes: s.cacheBytes(),
  });
  const get = (id: number): SequenceState => {
    const b = broken.get(id);
    if (b) throw b;
    const s = seqs.get(id);
    if (!s) throw new Error(`model worker: unknown sequence ${id}`);
    return s;
  };
  /** Runs a sequence operation; a failure marks the sequence broken instead of answering (no one waits for it). */
  const seqOp = (id: number, ver: number, f: () => SequenceState) => {
    try {
      const s = f();
      seqs.set(id, s);
      post({ type: 'seq', facts: facts(id, ver, s) });
    } catch (e) {
      broken.set(id, e instanceof Error ? e : new Error(String(e)));
    }
  };

  const handle = (m: ToWorker): void => {
    switch (m.op) {
      case 'forward': {
        try {
          const items: ForwardItem[] = m.items.map((it) => ({
            seq: get(it.seq),
            tokens: it.tokens,
            logits: it.logits,
            ...(it.patchEmbeddings ? { patchEmbeddings: it.patchEmbeddings } : {}),
          }));
          const out = model.forward(items);
          // Each row goes back by transfer when it owns its whole buffer; a view into a shared buffer is copied first.
          const transfer = new Set<ArrayBuffer>();
          const logits = out.map((a) => {
            const whole =
              a.byteOffset === 0 && a.byteLength === a.buffer.byteLength && a.buffer instanceof ArrayBuffer && !transfer.has(a.buffer);
            const own = whole ? a : a.slice();
            transfer.add(own.buffer as ArrayBuffer);
            return own;
          });
          post({ type: 'forward', id: m.id, logits, seqs: m.items.map((it, i) => facts(it.seq, it.ver, items[i]!.seq)) }, [...transfer]);
        } catch (e) {
          post({ type: 'failed', id: m.id, error: toWire(e) });
        }
        return;
      }
      case 'new':
        return seqOp(m.seq, m.ver, () => model.newSequence());
      case 'clone':
        return seqOp(m.seq, m.ver, () => get(m.from).clone());
      case 'truncate':
        return seqOp(m.seq, m.ver, () => {
          const s = get(m.seq);
          if (!s.truncate(m.length))
            throw new Error(
              `model worker: sequence ${m.seq} cannot be truncated to ${m.length} (length ${s.length}, floor ${truncateFloor(s)})`,
            );
          return s;
        });
      case 'free':
        seqs.get(m.seq)?.free?.();
        seqs.delete(m.seq);
        broken.delete(m.seq);
        return;
      case 'stats': {
        let bytes = 0;
        for (const s of seqs.values()) bytes += s.cacheBytes();
        post({ type: 'stats', id: m.id, stats: { sequences: seqs.size, cacheBytes: bytes } });
        return;
      }
      case 'images': {
        if (!encodeImages) {
          post({ type: 'failed', id: m.id, error: { name: 'UsageError', message: 'this model does not take images', llama4: true } });
          return;
        }
        encodeImages(m.tokens, m.images).then(
          (r) => {
            // A copy is sent (transferred): the encoder's feature cache may hold the array it returned.
            const pe = r.patchEmbeddings.slice();
            post({ type: 'images', id: m.id, tokens: r.tokens, patchEmbeddings: pe }, [pe.buffer]);
          },
          (e: unknown) => post({ type: 'failed', id: m.id, error: toWire(e) }),
        );
        return;
      }
    }
  };
  port.on('message', handle);
}

async function main(): Promise<void> {
  const init = workerData as WorkerInit;
  const port = parentPort!;
  let loaded: LoadedModel;
  try {
    loaded = await loadModel(init.path, {
      ...init.options,
      onProgress: (fraction, what) => port.postMessage({ type: 'progress', fraction, what } satisfies FromWorker),
    });
  } catch (e) {
    port.postMessage({ type: 'init-error', error: toWire(e) } satisfies FromWorker);
    return;
  }
  serveModel(loaded.model, loaded.images);
  port.postMessage({
    type: 'ready',
    info: loaded.model.info,
    format: loaded.format,
    tokenizerDir: loaded.tokenizerDir,
    backendNote: loaded.backendNote,
    backend: loaded.backend.name,
    vision: loaded.vision !== null,
  } satisfies FromWorker);
}

if (!isMainThread && parentPort && (workerData as Partial<WorkerInit> | null)?.llama4ModelWorker === true) void main();
