/**
 * Starts a worker thread on a module given by URL. A TypeScript entry (a tsx dev run) goes through a small bootstrap
 * that registers tsx inside the worker first: Node 20 does not carry `--import tsx`'s loader hooks into worker threads.
 */
import { Worker, type WorkerOptions } from 'node:worker_threads';

export function startWorker(url: URL, opts: WorkerOptions = {}): Worker {
  if (!url.pathname.endsWith('.ts')) return new Worker(url, opts);
  let tsxApi: string;
  try {
    tsxApi = import.meta.resolve('tsx/esm/api');
  } catch {
    return new Worker(url, opts); // no tsx: a runtime that strips types itself
  }
  const boot = `import(${JSON.stringify(tsxApi)}).then((m) => { m.register(); return import(${JSON.stringify(url.href)}); })`;
  return new Worker(boot, { ...opts, eval: true });
}
