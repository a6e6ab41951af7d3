import { Pass } from '../rewrite/pass';
import { captureHints } from './capture-hints';
import { channelsLast } from './channels-last';
import { eliminateDead } from './eliminate-dead';
import { eliminateDuplicates } from './eliminate-duplicates';
import { eliminateNoops } from './eliminate-noops';
import { foldConstants } from './fold-constants';
import { fuseAttention } from './fuse-attention';
import { fuseBiasAdd } from './fuse-bias-add';
import { fuseGelu } from './fuse-gelu';
import { fuseGroupNorm } from './fuse-group-norm';
import { fuseLayerNorm } from './fuse-layer-norm';
import { simplifyShapes } from './simplify-shapes';
import { specializeShapes } from './specialize-shapes';

/** Every pass sdc has, by name. The pipeline (src/compiler/pipeline.ts) decides which run in which mode. */
export const ALL_PASSES: Pass[] = [specializeShapes, foldConstants, simplifyShapes, eliminateNoops, eliminateDuplicates, eliminateDead, fuseAttention, fuseGroupNorm, fuseLayerNorm, fuseGelu, fuseBiasAdd, channelsLast, captureHints];

export function passByName(name: string): Pass | undefined {
  return ALL_PASSES.find((p) => p.name === name);
}
