import * as fs from 'fs';
import * as path from 'path';
import { compile } from '../../src/compiler/compile';
import { sd15Model } from '../../fixtures/materialize';
import { FIXTURES, relError, runModel, tmpDir, unetFeeds } from '../helpers/ort';

const STYLES = ['sdpa_op17', 'vanilla_op17', 'dynamo_op18'] as const;
const dir = tmpDir('sdc-e2e-');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

test.each(STYLES)('SD1.5 %s: 32 of 32 attention sites fused for cpu, outputs within 1e-4', async (style) => {
  const src = sd15Model(style);
  const out = path.join(dir, `${style}.onnx`);
  const report = compile(src, { output: out, mode: 'default', target: 'cpu' });
  const fused = report.passes.filter((p) => p.name === 'fuse-attention').reduce((s, p) => s + (p.counts?.attention ?? 0), 0);
  expect(fused).toBe(32);
  expect(report.opsAfter['com.microsoft::MultiHeadAttention']).toBe(32);
  expect(report.opsAfter['ai.onnx::Softmax'] ?? 0).toBe(0);
  const feeds = style === 'dynamo_op18' ? unetFeeds(2, 64, 77, 768) : unetFeeds(1, 32, 77, 768);
  const a = await runModel(src, feeds);
  const b = await runModel(out, feeds); // on the CPU provider: every emitted op has a CPU kernel
  const err = relError(a.out_sample, b.out_sample);
  console.log(`${style}: ${report.nodesBefore} -> ${report.nodesAfter} nodes, rel err ${err.toExponential(2)}`);
  expect(err).toBeLessThan(1e-4);
  fs.rmSync(`${out}.data`);
}, 900000);
