/** Worker side of QuantizePool: quantizes the rows it is sent and transfers the bytes back. */
import { parentPort } from 'node:worker_threads';
import type { DType } from '../../tensor/index.ts';
import { quantize } from '../../tensor/index.ts';

parentPort!.on('message', (m: { id: number; dtype: DType; data: Float32Array; rowLength: number }) => {
  try {
    const q = quantize(m.dtype, m.data, m.rowLength);
    parentPort!.postMessage({ id: m.id, q }, [q.buffer as ArrayBuffer]);
  } catch (e) {
    parentPort!.postMessage({ id: m.id, error: (e as Error).message });
  }
});
