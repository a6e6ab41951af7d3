import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { sd15Model } from '../../fixtures/materialize';
import { tmpDir } from '../helpers/ort';

/**
 * fp16 acceptance on the real SD1.5 graphs (synthesized weights), every style, through the CLI as a user
 * runs it (its own process: `--check` on the dynamo export's static 2×4×64×64 holds the fp32 model and
 * its activations; calibration peaks at 2.4 GB there, docs/precision.md):
 * calibrated, converted, then `--check 3` against fp32 at t = 500, 0, 999 on the CPU provider (webgpu's
 * GPU-only ops lowered): no NaN/Inf, max relative error < 5e-2 and mean < 5e-3, weights ≤ 52%.
 */
const SDC = path.resolve(__dirname, '..', '..', 'bin', 'sdc');
const dir = tmpDir('sdc-e2e-fp16-');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const CASES = [['sdpa_op17', 'cpu'], ['sdpa_op17', 'webgpu'], ['vanilla_op17', 'cpu'], ['dynamo_op18', 'cpu']] as const;

test.each(CASES)('SD1.5 %s fp16 for %s: within 5e-2 max / 5e-3 mean of fp32, half the weights', (style, target) => {
  const src = sd15Model(style);
  const out = path.join(dir, `${style}.${target}.fp16.onnx`);
  const r = spawnSync(SDC, ['compile', src, '-o', out, '--target', target, '--precision', 'fp16', '--check', '3', '--check-tolerance', '5e-2', '--json'], { encoding: 'utf8', maxBuffer: 1 << 28 });
  expect(r.stderr.split('\n').filter((l) => /^sdc: /.test(l))).toEqual([]);
  expect(r.status).toBe(0);
  const report = JSON.parse(r.stdout);
  expect(report.calibration.values).toBeGreaterThan(1000);
  expect(report.check.passed).toBe(true);
  expect(report.check).toMatchObject({ nonFinite: 0, mismatches: [] }); // no NaN or Inf in either model's outputs
  expect(report.check.maxRel).toBeLessThan(5e-2);
  expect(report.check.meanRel).toBeLessThan(5e-3);
  expect(fs.statSync(`${out}.data`).size).toBeLessThanOrEqual(0.52 * fs.statSync(`${src}.data`).size);
  // every island has its reason; the timestep embedding is one of them
  const islands = report.explanations.filter((e: { pass: string }) => e.pass === 'convert-fp16');
  expect(islands.every((e: { reason?: string }) => /^kept float32: /.test(e.reason ?? ''))).toBe(true);
  expect(islands.some((e: { reason?: string }) => /Sin|Cos/.test(e.reason ?? ''))).toBe(true);
  process.stderr.write(`SD1.5 ${style} fp16 ${target}: max rel ${report.check.maxRel.toExponential(2)}, mean ${report.check.meanRel.toExponential(2)}, calibration ${report.calibration.values} tensors in ${report.calibration.runs} runs (${report.calibration.ms} ms, ${report.calibration.skipped} skipped), data ${fs.statSync(`${out}.data`).size} of ${fs.statSync(`${src}.data`).size} bytes\n`);
  for (const f of [out, `${out}.data`]) fs.rmSync(f, { force: true });
}, 1800000);
