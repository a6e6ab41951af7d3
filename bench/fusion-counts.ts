import * as path from 'path';
import { compile } from '../src/compiler/compile';
import { TARGETS } from '../src/targets';

/** The counters each fusion pass reports, in table order. */
const COLUMNS: [string, string][] = [
  ['attention', 'attention'],
  ['packedAttention', '…packed (self)'],
  ['groupNorm', 'group norm'],
  ['skipGroupNorm', '…of a residual sum'],
  ['withSilu', '…with SiLU'],
  ['affineIntoConv', 'affine into Conv'],
  ['channelAffine', 'affine → BatchNorm'],
  ['skipLayerNorm', 'skip layer norm'],
  ['layerNorm', 'layer norm'],
  ['gelu', 'gelu'],
  ['biasSplitGelu', 'bias split gelu'],
  ['biasAdd', 'bias add'],
  ['projectionsMerged', 'projections merged'],
  ['nhwcConv', 'NhwcConv'],
];

/**
 * Fused sites per model and target, from dry-run compiles (the pipeline runs, nothing is written), with
 * the Transposes left in each output (cuda: after channels-last; compare with the NCHW cpu output).
 */
export function fusionCountsTable(models: { id: string; file: string }[]): string {
  const lines = [
    `| model | target | nodes | ${COLUMNS.map(([, h]) => h).join(' | ')} | Transposes in the output |`,
    `|---|---|---|${COLUMNS.map(() => '---').join('|')}|---|`,
  ];
  for (const m of models) {
    for (const target of TARGETS) {
      const r = compile(m.file, { output: path.join(path.dirname(m.file), 'dry-run.onnx'), target, dryRun: true });
      const counts: Record<string, number> = {};
      for (const p of r.passes) {
        if (!p.name.startsWith('fuse') && p.name !== 'channels-last' && p.name !== 'merge-projections') continue;
        for (const [k, v] of Object.entries(p.counts ?? {})) counts[k] = (counts[k] ?? 0) + v;
      }
      const transposes = r.opsAfter['ai.onnx::Transpose'] ?? 0;
      lines.push(`| ${m.id} | ${target} | ${r.nodesBefore} → ${r.nodesAfter} | ${COLUMNS.map(([k]) => counts[k] ?? 0).join(' | ')} | ${transposes} |`);
    }
  }
  return lines.join('\n');
}
