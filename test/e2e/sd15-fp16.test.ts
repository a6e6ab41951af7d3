import * as fs from 'fs';
import * as path from 'path';
import { sd15Model } from '../../fixtures/materialize';
import { compileChecked } from '../../src/verify/check';
import { tmpDir } from '../helpers/ort';

/**
 * fp16 acceptance on the real SD1.5 graphs (synthesized weights), every style: calibrated, converted,
 * then compared with the fp32 original on the CPU provider at t = 500, 0, 999 (webgpu outputs with
 * their GPU-only ops lowered): no NaN/Inf, max relative error < 5e-2 and mean < 5e-3, weights ≤ 52%.
 */
const STYLES = ['sdpa_op17', 'vanilla_op17', 'dynamo_op18'] as const;
const dir = tmpDir('sdc-e2e-fp16-');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

test.each(STYLES.flatMap((s) => (['cpu', 'webgpu'] as const).map((t) => [s, t] as const)))('SD1.5 %s fp16 for %s: within 5e-2 max / 5e-3 mean of fp32, half the weights', async (style, target) => {
  const src = sd15Model(style);
  const out = path.join(dir, `${style}.${target}.fp16.onnx`);
  const r = await compileChecked(src, { output: out, target, precision: 'fp16', check: 3, checkTolerance: 5e-2 });
  expect(r.calibration!.values).toBeGreaterThan(1000);
  expect(r.check!.passed).toBe(true);
  expect(Number.isFinite(r.check!.maxRel)).toBe(true); // a NaN or an Inf the original lacks counts as Infinity
  expect(r.check!.maxRel).toBeLessThan(5e-2);
  expect(r.check!.meanRel).toBeLessThan(5e-3);
  expect(r.dataFile).toBe(`${out}.data`);
  expect(fs.statSync(`${out}.data`).size).toBeLessThanOrEqual(0.52 * fs.statSync(`${src}.data`).size);
  // every island has its reason; the timestep embedding is one of them
  const islands = r.explanations.filter((e) => e.pass === 'convert-fp16');
  expect(islands.every((e) => /^kept float32: /.test(e.reason ?? ''))).toBe(true);
  expect(islands.some((e) => /Sin|Cos/.test(e.reason ?? ''))).toBe(true);
  for (const f of [out, `${out}.data`]) fs.rmSync(f, { force: true });
}, 900000);
