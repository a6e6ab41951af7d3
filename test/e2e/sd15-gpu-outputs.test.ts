import * as fs from 'fs';
import * as path from 'path';
import { compile } from '../../src/compiler/compile';
import { sd15Model } from '../../fixtures/materialize';
import { lowerToCpu } from '../../src/verify/lower';
import { FIXTURES, relError, runModel, tmpDir, unetFeeds } from '../helpers/ort';

const dir = tmpDir('sdc-e2e-');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** The SD1.5 cuda/webgpu outputs (BiasSplitGelu and BiasAdd only fire at SD sizes), lowered to CPU ops. */
test.each([
  ['sdpa_op17', 'cuda'],
  ['vanilla_op17', 'cuda'],
  ['dynamo_op18', 'cuda'],
  ['sdpa_op17', 'webgpu'],
] as const)('SD1.5 %s, %s output lowered to CPU ops: same numbers within 1e-4', async (style, target) => {
  const src = sd15Model(style);
  const out = path.join(dir, `${style}.${target}.onnx`);
  const r = compile(src, { output: out, target });
  expect(r.opsAfter['com.microsoft::BiasSplitGelu']).toBe(16);
  expect(r.opsAfter['com.microsoft::BiasAdd']).toBe(16);
  const lowered = path.join(dir, `${style}.${target}.lowered.onnx`);
  lowerToCpu(out, lowered);
  fs.rmSync(`${out}.data`);
  const feeds = style === 'dynamo_op18' ? unetFeeds(2, 64, 77, 768) : unetFeeds(1, 32, 77, 768);
  const err = relError((await runModel(src, feeds)).out_sample, (await runModel(lowered, feeds)).out_sample);
  console.log(`${style} ${target}: rel err ${err.toExponential(2)}`);
  expect(err).toBeLessThan(1e-4);
  fs.rmSync(`${lowered}.data`);
}, 900000);
