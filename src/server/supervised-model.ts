/**
 * A model worker that is restarted when it dies. `SupervisedModel` is the AsyncCausalLM the scheduler sees; it
 * forwards to the current WorkerModel. When that worker dies (a native crash, out of memory, a killed thread), the
 * calls in flight fail with a ModelUnavailableError (the HTTP layer answers 503, retry-after 1), the scheduler's
 * kept prefixes are dropped (their caches lived in the dead worker), and a new worker is started; requests after it
 * is ready run as before. While it starts, /health reports the failure and new requests fail the same way.
 * A worker that cannot be started again is retried on a later request, at most once per RETRY_MS.
 */
import type { AsyncCausalLM, EncodedImagePrompt, ForwardItem, ImageSource, ModelInfo, SequenceState } from '../engine/index.ts';
import { WorkerSequence, type WorkerModel } from '../model-worker/index.ts';

/** The model cannot compute right now (its worker died and is being restarted): the client may retry. */
export class ModelUnavailableError extends Error {
  override readonly name = 'ModelUnavailableError';
  readonly unavailable = true;
}

const RETRY_MS = 2000;

export class SupervisedModel implements AsyncCausalLM {
  readonly info: ModelInfo;
  /** Workers started after the first. */
  restarts = 0;
  private restarting: Promise<void> | null = null;
  private lastFailure: string | null = null;
  private lastAttempt = 0;
  private closed = false;

  constructor(
    public current: WorkerModel,
    private readonly start: () => Promise<WorkerModel>,
    /** Called after a new worker is in place (the scheduler drops what referred to the old one). */
    private readonly onRestart: () => void = () => undefined,
  ) {
    this.info = current.info;
  }

  newSequence(): SequenceState {
    this.check();
    return this.current.newSequence();
  }

  forward(items: readonly ForwardItem[]): Promise<Float32Array[]> {
    const model = this.current;
    if (model.dead) {
      this.check();
      return Promise.reject(this.unavailable(model.dead.message));
    }
    if (items.some((it) => !(it.seq instanceof WorkerSequence) || it.seq.owner !== model)) {
      // A sequence of a worker that died (held by a request admitted before the restart).
      return Promise.reject(this.unavailable('the model worker was restarted; this request lost its state'));
    }
    return model.forward(items).catch((e: Error) => {
      if (model.dead) {
        this.check();
        throw this.unavailable(e.message);
      }
      throw e;
    });
  }

  /** Early fusion in the worker (vision models). */
  encodeImages(tokens: number[], images: readonly ImageSource[]): Promise<EncodedImagePrompt> {
    const model = this.current;
    if (model.dead) {
      this.check();
      return Promise.reject(this.unavailable(model.dead.message));
    }
    return model.encodeImages(tokens, images).catch((e: Error) => {
      if (model.dead) {
        this.check();
        throw this.unavailable(e.message);
      }
      throw e;
    });
  }

  /** Why the model cannot compute now (a dead worker being restarted), or null. */
  failure(): string | null {
    if (this.closed) return 'the model was closed';
    if (this.current.dead) {
      this.check();
      return this.lastFailure ?? this.current.dead.message;
    }
    return null;
  }

  /** Resolves once no restart is under way (tests). */
  async settled(): Promise<void> {
    while (this.restarting) await this.restarting;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.restarting?.catch(() => undefined);
    await this.current.close();
  }

  /** Starts a new worker when the current one is dead (once; again after RETRY_MS if starting failed). */
  private check(): void {
    if (this.closed || !this.current.dead || this.restarting) return;
    if (this.lastAttempt && performance.now() - this.lastAttempt < RETRY_MS) return;
    this.lastAttempt = performance.now();
    const why = this.current.dead.message;
    this.lastFailure = `${why}; restarting it`;
    this.restarting = this.start().then(
      (next) => {
        this.restarting = null;
        if (this.closed) {
          void next.close();
          return;
        }
        this.current = next;
        this.restarts++;
        this.lastFailure = null;
        this.lastAttempt = 0;
        this.onRestart();
      },
      (e: Error) => {
        this.restarting = null;
        this.lastFailure = `${why}; restarting it failed: ${e.message}`;
      },
    );
  }

  private unavailable(why: string): ModelUnavailableError {
    return new ModelUnavailableError(`the model worker stopped (${why}); it is being restarted, retry shortly`);
  }
}
