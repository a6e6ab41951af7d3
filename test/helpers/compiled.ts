import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { CompileReport, compile } from '../../src/compiler/compile';
import { TargetName } from '../../src/targets';
import { TINY, tinyPath, tmpDir } from './ort';

export interface TinyCompile {
  target?: TargetName;
  mode?: 'default' | 'reduce-overhead';
  /** reduce-overhead's shape key, as the CLI takes it */
  shapes?: string;
}

let ownDir: string | null = null;

/**
 * A tiny UNet compiled once per test run, by whichever test file asks first: several files assert
 * different things about the same compile (the op table, the fused sites, the numbers, the lowering).
 * Outputs live in the run's folder (SDC_TEST_COMPILED, made by test/global-setup.js) and are read-only:
 * a test that writes over or damages a compiled model compiles its own. Concurrent workers may both
 * compile a key; each moves a complete file into place, the report last.
 */
export function compiledTiny(name: (typeof TINY)[number], o: TinyCompile = {}): { file: string; report: CompileReport } {
  const opts = { target: o.target ?? 'cpu', mode: o.mode ?? 'default', shapes: o.shapes ?? null };
  const key = crypto.createHash('sha256').update(JSON.stringify([name, opts])).digest('hex').slice(0, 16);
  const dir = process.env.SDC_TEST_COMPILED ?? (ownDir ??= tmpDir('sdc-test-compiled-'));
  const file = path.join(dir, `${name}.${opts.target}.${opts.mode}.${key}.onnx`);
  const reportFile = `${file}.json`;
  if (fs.existsSync(reportFile)) return { file, report: JSON.parse(fs.readFileSync(reportFile, 'utf8')) };
  const staging = fs.mkdtempSync(path.join(dir, `${key}-`));
  try {
    const report = compile(tinyPath(name), { ...opts, output: path.join(staging, 'model.onnx') });
    if (report.dataFile) throw new Error(`compiledTiny: ${name} got a data file; the cache keeps single-file models only`);
    fs.renameSync(path.join(staging, 'model.onnx'), file);
    const shared = { ...report, output: file };
    fs.writeFileSync(path.join(staging, 'report.json'), JSON.stringify(shared));
    fs.renameSync(path.join(staging, 'report.json'), reportFile);
    return { file, report: shared };
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
  }
}
