import { rulePass } from '../rewrite/driver';
import { Pass } from '../rewrite/pass';
import { ATTENTION, BIAS_ADD, CHANNEL_AFFINE, GELU, GROUP_NORM, LAYER_NORM, PACKED_ATTENTION } from '../rules';
import { captureHints } from './capture-hints';
import { channelsLast } from './channels-last';
import { eliminateDead } from './eliminate-dead';
import { eliminateDuplicates } from './eliminate-duplicates';
import { eliminateNoops } from './eliminate-noops';
import { convertFp16 } from './convert-fp16';
import { foldConstants } from './fold-constants';
import { mergeProjections } from './merge-projections';
import { simplifyShapes } from './simplify-shapes';
import { specializeShapes } from './specialize-shapes';

/**
 * Every pass sdc has, by name: the cleanup and layout passes, and one pass per fusion rule set (src/rules).
 * The pipeline (src/compiler/pipeline.ts) decides which run in which mode.
 */
export const ALL_PASSES: Pass[] = [
  specializeShapes, foldConstants, simplifyShapes, eliminateNoops, eliminateDuplicates, eliminateDead,
  rulePass(ATTENTION), rulePass(PACKED_ATTENTION), rulePass(GROUP_NORM), rulePass(CHANNEL_AFFINE), rulePass(LAYER_NORM), rulePass(GELU), rulePass(BIAS_ADD),
  mergeProjections, channelsLast, convertFp16, captureHints,
];

export function passByName(name: string): Pass | undefined {
  return ALL_PASSES.find((p) => p.name === name);
}
