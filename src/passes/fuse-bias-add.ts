import { analyzeShapes } from '../analysis/shapes';
import { DataType } from '../ir/dtype';
import { Pass } from '../rewrite/pass';
import { matchValue, p } from '../rewrite/match';

/** BiasAdd's CUDA kernel takes exactly these channel counts (WebGPU is held to the same). */
const CHANNELS = new Set([320, 640, 1280]);

/** (x + bias) + skip, in either order of the outer Add. */
const BIAS_ADD = p.op('Add', [
  p.op('Add', [p.any('x'), p.any('bias', (v) => !!v.constant && v.constant.dims.length === 1)], { commutative: true, capture: 'inner' }),
  p.any('skip'),
], { commutative: true, capture: 'root' });

/**
 * A projection's bias and the residual in one kernel: x + bias + skip → com.microsoft BiasAdd on webgpu
 * and cuda, for 3-D tensors of 320/640/1280 channels (the sizes the CUDA kernel accepts). Runs after
 * fuse-layer-norm, so residual Adds feeding a LayerNorm are already SkipLayerNormalization.
 */
export const fuseBiasAdd: Pass = {
  name: 'fuse-bias-add',
  description: 'x + bias + residual → com.microsoft BiasAdd (webgpu/cuda; 3-D, 320/640/1280 channels)',
  targets: ['webgpu', 'cuda'],
  run(graph, ctx) {
    const lacks = ctx.target.lacks('com.microsoft', 'BiasAdd');
    if (lacks) return { changed: false };
    const sa = analyzeShapes(ctx.model, graph);
    let fused = 0;
    for (const n of graph.nodes.filter((x) => x.opType === 'Add' && (x.domain === '' || x.domain === 'ai.onnx'))) {
      if (!graph.nodes.includes(n)) continue;
      const m = matchValue(BIAS_ADD, n.outputs[0]);
      if (!m) continue;
      const xs = sa.get(m.values.x).shape;
      const ss = sa.get(m.values.skip).shape;
      const c = xs?.[2]?.value;
      const why = !xs || xs.length !== 3 || !ss || ss.length !== 3 || !xs.every((d, i) => d.equals(ss[i]))
        ? 'input and residual are not the same 3-D shape'
        : c === null || c === undefined || !CHANNELS.has(c) || m.values.bias.constant!.size !== c
          ? `BiasAdd kernels take 320, 640 or 1280 channels (got ${c})`
          : sa.get(m.values.x).dtype !== DataType.FLOAT && sa.get(m.values.x).dtype !== DataType.FLOAT16
            ? 'float types only'
            : null;
      if (why) {
        ctx.explain(n, 'skipped', why);
        continue;
      }
      const out = m.values.root;
      const b = graph.addNode({ op: 'BiasAdd', domain: 'com.microsoft', inputs: [m.values.x, m.values.bias, m.values.skip], outputs: [`${out.name}_biasadd`], name: `${n.name}_BiasAdd` });
      b.outputs[0].type = out.type;
      ctx.model.useDomain('com.microsoft');
      graph.replaceAllUsesWith(out, b.outputs[0]);
      fused++;
      ctx.explain(n, 'applied', `BiasAdd (${c} channels)`);
    }
    if (fused) graph.topoSort();
    return { changed: fused > 0, counts: { biasAdd: fused } };
  },
};
