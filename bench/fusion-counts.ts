import * as path from 'path';
import { compile } from '../src/compiler/compile';
import { fusedSiteCounts, siteColumns } from '../src/passes';
import { TARGETS } from '../src/targets';

/**
 * Fused sites per model and target, from dry-run compiles (the pipeline runs, nothing is written), with
 * the Transposes left in each output (cuda: after channels-last; compare with the NCHW cpu output).
 */
export function fusionCountsTable(models: { id: string; file: string }[]): string {
  const COLUMNS = siteColumns().map((c) => [c.counter, c.label]);
  const lines = [
    `| model | target | nodes | ${COLUMNS.map(([, h]) => h).join(' | ')} | Transposes in the output |`,
    `|---|---|---|${COLUMNS.map(() => '---').join('|')}|---|`,
  ];
  for (const m of models) {
    for (const target of TARGETS) {
      const r = compile(m.file, { output: path.join(path.dirname(m.file), 'dry-run.onnx'), target, dryRun: true });
      const counts = fusedSiteCounts(r.passes);
      const transposes = r.opsAfter['ai.onnx::Transpose'] ?? 0;
      lines.push(`| ${m.id} | ${target} | ${r.nodesBefore} → ${r.nodesAfter} | ${COLUMNS.map(([k]) => counts[k] ?? 0).join(' | ')} | ${transposes} |`);
    }
  }
  return lines.join('\n');
}
