#!/usr/bin/env node
// The `llama4` command. The TypeScript sources are compiled to dist/ by `npm install` (the `prepare` script).
import { existsSync } from 'node:fs';
const main = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(main)) {
  process.stderr.write('llama4: dist/ is missing; run `npm install` (or `npm run build`) in the package folder first.\n');
  process.exit(1);
}
const { main: run } = await import(main.href);
process.exitCode = await run(process.argv.slice(2));
