import * as path from 'path';
import { compile, CompileReport } from '../../src/compiler/compile';
import { Mode } from '../../src/rewrite/pass';
import { TargetName } from '../../src/targets';
import { ModelBuilder } from '../../src/ir/builder';
import { Feeds, relError, runModel } from './ort';
import { saveModel } from '../../src/onnx/write';

export interface Checked {
  report: CompileReport;
  ops: Record<string, number>;
  worst: number;
}

/**
 * Save the built model, compile it, and run original and compiled in onnxruntime on each feed set:
 * returns the op histogram after and the worst relative error over all outputs and feeds.
 */
export async function compileAndCompare(
  b: ModelBuilder,
  dir: string,
  name: string,
  feeds: Feeds[],
  opts: { passes?: string[]; mode?: Mode; target?: TargetName; shapes?: string } = {},
): Promise<Checked> {
  const src = saveModel(b.model, path.join(dir, `${name}.onnx`));
  const out = path.join(dir, `${name}.out.onnx`);
  const report = compile(src, { output: out, passes: opts.passes, mode: opts.mode, target: opts.target, shapes: opts.shapes, verifyEach: true });
  let worst = 0;
  for (const f of feeds) {
    const a = await runModel(src, f);
    const c = await runModel(out, f);
    for (const k of Object.keys(a)) worst = Math.max(worst, relError(a[k], c[k]));
  }
  return { report, ops: report.opsAfter, worst };
}
