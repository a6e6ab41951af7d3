import { compile } from '../compiler/compile';
import { inspect } from '../compiler/inspect';
import { readModel } from '../compiler/onnx/read';

/**
 * Runs one sdc step in a fresh process so its time and peak memory are its own:
 *   node dist/bench/child.js inspect MODEL
 *   node dist/bench/child.js compile MODEL OUT JSON-OPTIONS
 * prints one JSON line: { ms, maxRssMb, result }.
 */
function main(): void {
  const [cmd, model, out, opts] = process.argv.slice(2);
  const t0 = performance.now();
  const result = cmd === 'inspect' ? inspect(readModel(model)) : compile(model, { output: out, ...(opts ? JSON.parse(opts) : {}) });
  const ms = performance.now() - t0;
  process.stdout.write(JSON.stringify({ ms, maxRssMb: process.resourceUsage().maxRSS / 1024, result }) + '\n');
}

main();
