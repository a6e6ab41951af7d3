import * as fs from 'fs';
import * as path from 'path';
import { compile } from '../../src/compiler/compile';
import { inspect } from '../../src/compiler/inspect';
import { readModel } from '../../src/onnx/read';
import { sd15Model } from '../../fixtures/materialize';
import { FIXTURES, bitEqual, runModel, tmpDir, unetFeeds } from '../helpers/ort';

/** SD1.5 scale: 3.4 GB of synthesized weights per style (made once, cached outside the repo). */
const STYLES = ['sdpa_op17', 'vanilla_op17', 'dynamo_op18'] as const;
const dir = tmpDir('sdc-e2e-');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** The TorchScript exports take any shape; the dynamo one is static (batch 2, 64x64). */
export const sd15Feeds = (style: string) => (style === 'dynamo_op18' ? unetFeeds(2, 64, 77, 768) : unetFeeds(1, 32, 77, 768));

test.each(STYLES)('SD1.5 %s: compile --passes none is bit-exact and keeps every op', async (style) => {
  const src = sd15Model(style);
  const out = path.join(dir, `${style}.onnx`);
  const report = compile(src, { output: out, passes: [] });
  expect(report.dataFile).toBe(`${out}.data`);
  expect(fs.statSync(`${out}.data`).size).toBeGreaterThan(3_000_000_000);
  expect(inspect(readModel(out)).ops).toEqual(inspect(readModel(src)).ops);
  const feeds = sd15Feeds(style);
  const opts = { graphOptimizationLevel: 'disabled' as const };
  const a = await runModel(src, feeds, opts);
  const b = await runModel(out, feeds, opts);
  expect(bitEqual(a.out_sample, b.out_sample)).toBe(true);
  fs.rmSync(`${out}.data`);
}, 900000);

test('the peer optimizer\'s SD1.5 WebGPU graph (weights synthesized N(0, 0.02)) round-trips with the same ops', () => {
  const { materialize, modelCacheDir } = require('../../fixtures/materialize');
  const src = materialize(path.join(FIXTURES, 'models', 'peer', 'sd15_unet_vanilla_op17.ortopt_webgpu.graph.onnx'), null, path.join(modelCacheDir(), 'sd15_peer_webgpu'));
  const out = path.join(dir, 'peer.onnx');
  compile(src, { output: out, passes: [] });
  expect(inspect(readModel(out)).ops).toEqual(inspect(readModel(src)).ops);
  expect(inspect(readModel(out)).ops['com.microsoft::MultiHeadAttention']).toBeGreaterThan(0);
  fs.rmSync(`${out}.data`);
}, 900000);
