import * as path from 'path';
import { compile } from '../../src/compiler/compile';
import { KERNELS, TARGETS, Target } from '../../src/targets';
import { sd15Model } from '../../fixtures/materialize';

const STYLES = ['sdpa_op17', 'vanilla_op17', 'dynamo_op18'] as const;

describe.each(STYLES)('SD1.5 %s', (style) => {
  test.each(TARGETS)('target %s: every fusion finds all its sites, and only ops the target runs are emitted', (target) => {
    const src = sd15Model(style);
    const r = compile(src, { output: path.join(path.dirname(src), 'dry.onnx'), target, dryRun: true });
    const ops = r.opsAfter;
    // webgpu packs the 16 self-attentions into com.microsoft Attention; cross-attention stays MHA
    expect((ops['com.microsoft::MultiHeadAttention'] ?? 0) + (ops['com.microsoft::Attention'] ?? 0)).toBe(32);
    if (target === 'webgpu') expect(ops['com.microsoft::Attention']).toBe(16);
    expect(ops['com.microsoft::SkipLayerNormalization']).toBe(32);
    if (target === 'cuda') {
      expect((ops['com.microsoft::GroupNorm'] ?? 0) + (ops['com.microsoft::SkipGroupNorm'] ?? 0)).toBe(61);
      expect(ops['com.microsoft::NhwcConv']).toBeGreaterThan(90);
    }
    if (target !== 'cpu') expect(ops['com.microsoft::BiasSplitGelu']).toBe(16);
    else expect(ops['com.microsoft::Gelu']).toBe(16);
    for (const op of Object.keys(ops)) {
      const [domain, name] = op.split('::');
      expect({ op, runs: new Target(target).runs(domain === 'ai.onnx' ? '' : domain, name) }).toEqual({ op, runs: true });
      if (!KERNELS[op]) expect(op.startsWith('ai.onnx::')).toBe(true);
    }
  }, 120000);
});
