import * as fs from 'fs';
import { compile } from '../src/compiler/compile';
import { inspect } from '../src/compiler/inspect';
import { readModel } from '../src/onnx/read';

/**
 * Runs one step in a fresh process so its time and peak memory are its own:
 *   node dist/bench/child.js inspect MODEL
 *   node dist/bench/child.js compile MODEL OUT JSON-OPTIONS
 *   node dist/bench/child.js create MODEL LEVEL        (onnxruntime session creation)
 *   node dist/bench/child.js copy FILE COPY            (the compile study's floor: a kernel-side copy, fsynced)
 * prints one JSON line: { ms, maxRssMb, result }.
 */
async function main(): Promise<void> {
  const [cmd, model, out, opts] = process.argv.slice(2);
  // onnxruntime is loaded for session creation only (and before the clock starts), so no other step's
  // peak memory holds it
  const ort = cmd === 'create' ? await import('onnxruntime-node') : null;
  const t0 = performance.now();
  let result: unknown;
  if (cmd === 'inspect') result = inspect(readModel(model));
  else if (cmd === 'compile') result = compile(model, { output: out, ...(opts ? JSON.parse(opts) : {}) });
  else if (cmd === 'copy') {
    // copy_file_range: the bytes never pass through this process; fsync as sdc's writer does its output
    fs.copyFileSync(model, out);
    const fd = fs.openSync(out, 'r+');
    fs.fsyncSync(fd);
    fs.closeSync(fd);
  } else if (ort) {
    const s = await ort.InferenceSession.create(model, { graphOptimizationLevel: out as 'all', logSeverityLevel: 3 });
    result = { ms: performance.now() - t0 };
    await s.release();
  } else throw new Error(`child.js: unknown step '${cmd}'`);
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
