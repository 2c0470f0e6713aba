/** What every engine path shares: why a generation ended, and how it lets the event loop run between steps. */

/**
 * Why a generation ended: a stop token (or a stop string / finished constraint), the token or context limit, the
 * caller's AbortSignal, or an error confined to that request.
 */
export type FinishReason = 'stop' | 'length' | 'cancelled' | 'error';

/** Resolves after the event loop has run once (setImmediate): HTTP, /health and aborts are served between steps. */
export const yieldToEventLoop = (): Promise<void> => new Promise<void>((r) => setImmediate(r));
