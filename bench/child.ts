import * as fs from 'fs';
import * as ort from 'onnxruntime-node';
import { compile } from '../src/compiler/compile';
import { inspect } from '../src/compiler/inspect';
import { readModel } from '../src/onnx/read';

/**
 * Runs one step in a fresh process so its time and peak memory are its own:
 *   node dist/bench/child.js inspect MODEL
 *   node dist/bench/child.js compile MODEL OUT JSON-OPTIONS
 *   node dist/bench/child.js create MODEL LEVEL        (onnxruntime session creation)
 * prints one JSON line: { ms, maxRssMb, result }.
 */
async function main(): Promise<void> {
  const [cmd, model, out, opts] = process.argv.slice(2);
  const t0 = performance.now();
  let result: unknown;
  if (cmd === 'inspect') result = inspect(readModel(model));
  else if (cmd === 'compile') result = compile(model, { output: out, ...(opts ? JSON.parse(opts) : {}) });
  else {
    const s = await ort.InferenceSession.create(model, { graphOptimizationLevel: out as 'all', logSeverityLevel: 3 });
    result = { ms: performance.now() - t0 };
    await s.release();
  }
  const ms = performance.now() - t0;
  process.stdout.write(JSON.stringify({ ms, maxRssMb: peakRssMb(), result }) + '\n');
}

/**
 * This process's own peak resident set (VmHWM). getrusage's maxrss would not do: Linux carries the
 * parent's peak across fork and exec, so a child of a big process reports the parent's memory.
 */
function peakRssMb(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) / 1024 : process.resourceUsage().maxRSS / 1024;
}

main().catch((e) => {
  process.stderr.write(`${e.stack ?? e}\n`);
  process.exit(1);
});
