import { RuleSet } from '../rewrite/rule';
import { affineIntoConv } from './affine-into-conv';
import { attention } from './attention';
import { biasAdd } from './bias-add';
import { biasSplitGelu } from './bias-split-gelu';
import { channelAffine } from './channel-affine';
import { gelu } from './gelu';
import { groupNorm } from './group-norm';
import { groupNormSilu } from './group-norm-silu';
import { layerNorm } from './layer-norm';
import { packedAttention } from './packed-attention';
import { skipGroupNorm } from './skip-group-norm';
import { skipLayerNorm } from './skip-layer-norm';

/**
 * The fusion rule sets, one pipeline pass each. The pipeline runs them in this order: group norms before
 * layer norms (so residual Adds are settled), layer norms before bias add (a residual Add feeding a
 * LayerNorm belongs to SkipLayerNormalization).
 */
export const ATTENTION: RuleSet = {
  name: 'fuse-attention',
  description: 'MatMul→scale→Softmax→MatMul with head splits → one MultiHeadAttention (or Attention-23) per site',
  rules: [attention],
  anchors: [
    { op: 'Softmax', reason: 'not softmax(scale·QKᵀ [+ mask]) V with a single reader at each step (pattern did not match)' },
    { op: 'Attention', reason: 'already a fused ai.onnx::Attention (opset 23), runs on every target', counter: 'alreadyFused' },
  ],
};

export const PACKED_ATTENTION: RuleSet = {
  name: 'fuse-packed-attention',
  description: 'self-attention MultiHeadAttention(x·Wq, x·Wk, x·Wv) → com.microsoft Attention with packed weights (webgpu)',
  rules: [packedAttention],
  appliesTo: (target) => (target.name === 'webgpu' ? null : `on ${target.name} three projections cost no dispatches worth repacking the weights`),
};

export const GROUP_NORM: RuleSet = {
  name: 'fuse-group-norm',
  description: 'Reshape→InstanceNorm→Reshape (+affine, +SiLU, of a residual sum) → com.microsoft GroupNorm / SkipGroupNorm, NHWC',
  rules: [groupNorm, groupNormSilu, skipGroupNorm],
  anchors: [{ op: 'InstanceNormalization', reason: 'not Reshape → InstanceNormalization → Reshape' }],
};

export const CHANNEL_AFFINE: RuleSet = {
  name: 'fuse-channel-affine',
  description: 'per-channel x·γ + β (a GroupNorm\'s affine where no GroupNorm kernel takes it) → folded into the next unpadded Conv, else BatchNormalization (webgpu)',
  rules: [affineIntoConv, channelAffine],
  // a dispatch saved per site matters where every kernel is a GPU dispatch; cuda's GroupNorm takes the affine
  appliesTo: (target) => (target.name === 'webgpu' ? null : `on ${target.name} the two elementwise ops are not worth a rewrite (only webgpu dispatches each)`),
};

export const LAYER_NORM: RuleSet = {
  name: 'fuse-layer-norm',
  description: 'decomposed LayerNorm → LayerNormalization; residual Add + LayerNormalization → SkipLayerNormalization',
  rules: [layerNorm, skipLayerNorm],
};

export const GELU: RuleSet = {
  name: 'fuse-gelu',
  description: 'erf GELU → Gelu; GEGLU (bias, split, left·gelu(right)) → BiasSplitGelu',
  rules: [biasSplitGelu, gelu],
  anchors: [{ op: 'Erf', reason: 'Erf is not part of x·½·(1+erf(x/√2))' }],
};

export const BIAS_ADD: RuleSet = {
  name: 'fuse-bias-add',
  description: 'x + bias + residual → com.microsoft BiasAdd (3-D)',
  rules: [biasAdd],
};

export const RULE_SETS: RuleSet[] = [ATTENTION, PACKED_ATTENTION, GROUP_NORM, CHANNEL_AFFINE, LAYER_NORM, GELU, BIAS_ADD];
