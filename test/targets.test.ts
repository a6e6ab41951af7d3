import * as fs from 'fs';
import * as path from 'path';
import { renderFusionTable } from '../src/passes';
import { KERNELS, TARGETS, Target, renderTargetTable } from '../src/targets';
import { TINY, relError, runModel, tinyPath, unetFeeds } from './helpers/ort';
import { compiledTiny } from './helpers/compiled';

test('docs/targets.md shows the kernel table and the fusion table the compiler uses (npm run docs renders them)', () => {
  const doc = fs.readFileSync(path.join(__dirname, '..', 'docs', 'targets.md'), 'utf8');
  expect(doc).toContain(renderTargetTable());
  expect(doc).toContain(renderFusionTable());
});

describe.each(TINY)('tiny %s', (name) => {
  test.each(TARGETS)('target %s: every contrib or fused op in the output is in the table for that target', (target) => {
    const { report: r } = compiledTiny(name, { target });
    for (const op of Object.keys(r.opsAfter)) {
      const [domain, name] = op.split('::');
      expect({ op, runs: new Target(target).runs(domain === 'ai.onnx' ? '' : domain, name) }).toEqual({ op, runs: true });
      if (!KERNELS[op]) expect(op.startsWith('ai.onnx::')).toBe(true);
    }
    // the fusions that apply here did apply
    // webgpu packs each self-attention's projections into com.microsoft Attention
    expect((r.opsAfter['com.microsoft::MultiHeadAttention'] ?? 0) + (r.opsAfter['com.microsoft::Attention'] ?? 0)).toBe(12);
    if (target === 'webgpu') expect(r.opsAfter['com.microsoft::Attention']).toBe(6);
    expect(r.opsAfter['com.microsoft::SkipLayerNormalization']).toBe(12);
    if (target === 'cuda') expect((r.opsAfter['com.microsoft::GroupNorm'] ?? 0) + (r.opsAfter['com.microsoft::SkipGroupNorm'] ?? 0)).toBe(31);
    if (target === 'cuda') expect(r.opsAfter['com.microsoft::NhwcConv']).toBeGreaterThanOrEqual(46);
    if (target !== 'cuda') expect(r.opsAfter['ai.onnx::InstanceNormalization']).toBe(31);
  });

  test('the cpu output runs on the CPU provider with the original numbers', async () => {
    const { file: out } = compiledTiny(name, { target: 'cpu' });
    const feeds = unetFeeds(2, 32, 16, 32);
    expect(relError((await runModel(tinyPath(name), feeds)).out_sample, (await runModel(out, feeds)).out_sample)).toBeLessThan(1e-4);
  });
});

test('cuda output keeps no pair of Transposes that cancel', () => {
  const { file, report: r } = compiledTiny('unet_sdpa_op17', { target: 'cuda' });
  const m = require('../src/onnx/read').readModel(file);
  let cancelling = 0;
  for (const n of m.graph.nodes) {
    if (n.opType !== 'Transpose') continue;
    const prev = n.inputs[0]?.producer;
    if (prev?.opType !== 'Transpose') continue;
    const p1 = prev.ints('perm')!;
    const p2 = n.ints('perm')!;
    if (p2.every((p: number, i: number) => p1[p] === i)) cancelling++;
  }
  expect(cancelling).toBe(0);
  expect(r.opsAfter['com.microsoft::SkipGroupNorm']).toBeGreaterThan(0);
});
