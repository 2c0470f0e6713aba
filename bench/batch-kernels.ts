/**
 * Small-batch matmul cost against decode (T = 1): time per matrix for T tokens, weights streamed cold from DRAM
 * (enough distinct copies to read --mib MiB per pass), best of 5 passes. A kernel that streams each weight once for
 * all tokens costs about T = 1's time until its arithmetic catches up with the memory time.
 * --cpu times process CPU time instead of wall time (with --threads 1 it is what the kernel costs on a busy machine,
 * where other jobs take turns on the cores).
 * Usage: node --import tsx bench/batch-kernels.ts [--threads 2] [--types q4_0,q6_k] [--shapes 2048x2048,32000x2048] [--tokens 1,2,4,8,16] [--cpu]
 */
import { parseArgs } from 'node:util';
import type { DType } from '../src/tensor/index.ts';
import { byteSize } from '../src/tensor/index.ts';
import { tryCreateNativeBackend } from '../src/kernels/native/index.ts';

const { values: o } = parseArgs({
  options: {
    threads: { type: 'string', default: '2' },
    types: { type: 'string', default: 'q4_0,q6_k' },
    shapes: { type: 'string', default: '2048x2048,1024x2048,32000x2048' },
    tokens: { type: 'string', default: '1,2,4,8,16' },
    mib: { type: 'string', default: '256' },
    cpu: { type: 'boolean', default: false },
  },
});
const { backend: be } = tryCreateNativeBackend({ threads: +o.threads! });
if (!be) throw new Error('native backend unavailable');
const Ts = o.tokens!.split(',').map(Number);
console.log(`${be.name}, ${be.threads} threads; ${o.cpu ? 'CPU' : 'wall'} µs per matrix (GB/s of weights), ratio to T = 1`);
for (const dtype of o.types!.split(',') as DType[]) {
  for (const shape of o.shapes!.split(',')) {
    const [N, K] = shape.split('x').map(Number) as [number, number];
    const bytes = byteSize(dtype, K) * N;
    const copies = Math.max(2, Math.ceil((+o.mib! * 2 ** 20) / bytes));
    const ws = Array.from({ length: copies }, (_, i) => {
      const b = new Uint8Array(bytes);
      for (let j = 0; j < b.length; j += 97) b[j] = (j * 31 + i) & 255;
      if (dtype === 'q4_0')
        for (let j = 0; j < b.length; j += 18) {
          b[j] = 0;
          b[j + 1] = 0x20;
        } // sane f16 scales
      return be.weight({ name: `w${i}`, dtype, shape: [N, K], bytes: b });
    });
    const x = new Float32Array(16 * K).map((_, i) => Math.sin(i));
    const out = new Float32Array(16 * N);
    let t1 = 0;
    const cells: string[] = [];
    for (const T of Ts) {
      let best = Infinity;
      for (let p = 0; p < 5; p++) {
        const t0 = process.hrtime.bigint();
        const c0 = process.cpuUsage();
        for (const w of ws) be.matmul(out, x, w, T);
        const c = process.cpuUsage(c0);
        const us = o.cpu ? c.user + c.system : Number(process.hrtime.bigint() - t0) / 1e3;
        best = Math.min(best, us / copies);
      }
      if (T === 1) t1 = best;
      cells.push(`T=${T} ${best.toFixed(0)}µs (${(bytes / best / 1e3).toFixed(1)}) x${(best / t1).toFixed(2)}`);
    }
    console.log(`${dtype} ${shape}: ${cells.join('  ')}`);
  }
}
be.dispose();
