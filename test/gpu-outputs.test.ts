import * as fs from 'fs';
import * as path from 'path';
import { compile } from '../src/compiler/compile';
import { readModel } from '../src/onnx/read';
import { lowerToCpu } from '../src/verify/lower';
import { TINY, relError, runModel, tinyPath, tmpDir, unetFeeds } from './helpers/ort';
import { compiledTiny } from './helpers/compiled';

const dir = tmpDir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/**
 * The cuda and webgpu outputs cannot run here, but their contrib ops have documented semantics: lowered
 * back to CPU ops by a test oracle, the transformed graphs (NHWC convolutions with re-laid-out weights,
 * sunk transposes, GroupNorm with affine and SiLU folded) must compute the original's numbers.
 */
describe.each(TINY)('tiny %s', (name) => {
  test.each(['cuda', 'webgpu'] as const)('%s output, lowered to CPU ops, equals the original within 1e-4', async (target) => {
    const { file: out } = compiledTiny(name, { target });
    const lowered = path.join(dir, `${name}.${target}.lowered.onnx`);
    const n = lowerToCpu(out, lowered);
    if (target === 'cuda') expect(n).toBeGreaterThanOrEqual(31 + 46); // (Skip)GroupNorms and NhwcConvs
    const feeds = unetFeeds(2, 32, 16, 32);
    expect(relError((await runModel(tinyPath(name), feeds)).out_sample, (await runModel(lowered, feeds)).out_sample)).toBeLessThan(1e-4);
  });
});

test('the attention lowerings compute the fused ops (on the CPU, where both ops are exact)', async () => {
  const out = path.join(dir, 'mha.onnx');
  // cpu has MultiHeadAttention; the packed Attention comes from the webgpu rule set, run here by name
  compile(tinyPath('unet_sdpa_op17'), { output: out, target: 'cpu', passes: ['cleanup', 'fuse-attention', 'fuse-packed-attention', 'cleanup'] });
  const fused = readModel(out).graph.nodes;
  expect(fused.filter((n) => n.opType === 'Attention').length).toBeGreaterThan(0);
  expect(fused.filter((n) => n.opType === 'MultiHeadAttention').length).toBeGreaterThan(0);
  const lowered = path.join(dir, 'mha.lowered.onnx');
  expect(lowerToCpu(out, lowered, ['MultiHeadAttention', 'Attention'])).toBeGreaterThan(0);
  expect(readModel(lowered).graph.nodes.some((n) => ['MultiHeadAttention', 'Attention'].includes(n.opType))).toBe(false);
  expect(relError((await runModel(out, unetFeeds(2, 32, 16, 32))).out_sample, (await runModel(lowered, unetFeeds(2, 32, 16, 32))).out_sample)).toBeLessThan(1e-5);
});
