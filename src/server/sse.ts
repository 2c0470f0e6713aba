/**
 * Server-sent events as a streaming Response. `write` queues one event; the stream closes when `run` settles.
 * When the client goes away the stream is cancelled and `onCancel` fires (the handler aborts the generation).
 */
export interface SseWriter {
  /** OpenAI style: `data: <json>`; Anthropic style adds `event: <name>`. */
  send(data: unknown, event?: string): void;
  /** A raw data line (OpenAI's `[DONE]`). */
  raw(data: string): void;
}

export function sseResponse(run: (w: SseWriter) => Promise<void>, onCancel: () => void, headers: Record<string, string> = {}): Response {
  return streamingResponse(
    (put) =>
      run({
        send: (data, event) => put(`${event ? `event: ${event}\n` : ''}data: ${JSON.stringify(data)}\n\n`),
        raw: (data) => put(`data: ${data}\n\n`),
      }),
    onCancel,
    {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
      ...headers,
    },
  );
}

/**
 * A streaming 200 Response: `run` writes text pieces with `put` (dropped once the client is gone); the stream closes
 * when `run` settles, and `onCancel` fires when the client goes away. SSE and Ollama's NDJSON build on it.
 */
export function streamingResponse(
  run: (put: (s: string) => void) => Promise<void>,
  onCancel: () => void,
  headers: Record<string, string>,
): Response {
  const enc = new TextEncoder();
  let closed = false;
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      const put = (s: string) => {
        if (closed) return;
        try {
          controller.enqueue(enc.encode(s));
        } catch {
          closed = true;
        }
      };
      run(put).finally(() => {
        if (!closed) {
          closed = true;
          try {
            controller.close();
          } catch {
            /* already cancelled */
          }
        }
      });
    },
    cancel() {
      closed = true;
      onCancel();
    },
  });
  return new Response(stream, { status: 200, headers });
}
