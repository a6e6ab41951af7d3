import * as fs from 'fs';
import * as path from 'path';
import { compile } from '../src/compiler/compile';
import { TargetName } from '../src/targets';
import { TINY, relError, runModel, tinyPath, tmpDir, unetFeeds } from './helpers/ort';
import { compiledTiny } from './helpers/compiled';

const dir = tmpDir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe.each(TINY)('tiny %s', (name) => {
  test('12 of 12 attention sites fused for cpu; outputs within 1e-4 at sequence 16 and 77', async () => {
    const { file: out, report: r } = compiledTiny(name, { mode: 'default', target: 'cpu' });
    expect(r.opsAfter['com.microsoft::MultiHeadAttention']).toBe(12);
    expect(r.opsAfter['ai.onnx::Softmax'] ?? 0).toBe(0);
    expect(r.explanations.filter((e) => e.pass === 'fuse-attention' && e.status === 'applied')).toHaveLength(12);
    // the dynamo export is static (sequence 16); the TorchScript ones take any sequence length
    const seqs = name.includes('dynamo') ? [16] : [16, 77];
    for (const seq of seqs) {
      const feeds = unetFeeds(2, 32, seq, 32);
      const [a, b] = [await runModel(tinyPath(name), feeds), await runModel(out, feeds)];
      expect(relError(a.out_sample, b.out_sample)).toBeLessThan(1e-4);
    }
  });
});

test.each(['webgpu', 'cuda'] as TargetName[])('target %s also gets fused attention (it has kernels there)', (target) => {
  const { report: r } = compiledTiny('unet_sdpa_op17', { mode: 'default', target });
  // on webgpu the 6 self-attentions become packed com.microsoft Attention, the 6 cross-attentions stay MHA
  expect(r.opsAfter['com.microsoft::MultiHeadAttention']).toBe(target === 'webgpu' ? 6 : 12);
  expect(r.opsAfter['com.microsoft::Attention'] ?? 0).toBe(target === 'webgpu' ? 6 : 0);
});

test('a static batch of 1 (size-1 dims in the layouts) still fuses every site', async () => {
  const out = path.join(dir, 'b1.onnx');
  const r = compile(tinyPath('unet_vanilla_op17'), { output: out, mode: 'reduce-overhead', shapes: 'sample=1x4x32x32,timestep=1,encoder_hidden_states=1x16x32' });
  expect(r.opsAfter['com.microsoft::MultiHeadAttention']).toBe(12);
  const feeds = unetFeeds(1, 32, 16, 32);
  const [a, b] = [await runModel(tinyPath('unet_vanilla_op17'), feeds), await runModel(out, feeds)];
  expect(relError(a.out_sample, b.out_sample)).toBeLessThan(1e-4);
});
