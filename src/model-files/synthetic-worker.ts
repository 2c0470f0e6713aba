/** Worker side of parallelRandomProducer: fills one piece of a matrix in the shared buffer it is sent. */
import { parentPort } from 'node:worker_threads';
import { type GaussPiece, fillGauss } from './synthetic.ts';

parentPort!.on('message', (m: { id: number; buffer: SharedArrayBuffer; offset: number; piece: GaussPiece }) => {
  try {
    fillGauss(new Float32Array(m.buffer), m.offset, m.piece);
    parentPort!.postMessage({ id: m.id });
  } catch (e) {
    parentPort!.postMessage({ id: m.id, error: (e as Error).message });
  }
});
