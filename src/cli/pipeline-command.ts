import { Progress } from '../compiler/progress';
import { CheckedReport } from '../verify/check';
import { compilePipeline, PipelineCompileOptions, PipelineReport } from '../pipeline/compile-pipeline';

/** `sdc compile DIR -o OUTDIR`: the pipeline door; the summary says per component what happened. */
export async function compilePipelineCommand(dir: string, opts: PipelineCompileOptions & { json?: boolean; quiet?: boolean; explain?: boolean }, progress: Progress): Promise<string | null> {
  const report = await compilePipeline(dir, { ...opts, progress });
  if (opts.quiet) return null;
  if (opts.json) return JSON.stringify(report, null, 2);
  return pipelineSummary(report, !!opts.explain);
}

function pipelineSummary(r: PipelineReport, explain: boolean): string {
  const s = r.shape;
  const lines = [`${r.input} -> ${r.output || '(dry run)'}${r.className ? ` (${r.className})` : ''}`];
  lines.push(`dims from ${s.height}x${s.width} pixels, batch ${s.batch}${s.cfg ? ' (x2 for guidance in the UNet)' : ''}: ${r.notes.join('; ')}`);
  const where = new Set<string>();
  for (const c of r.components) {
    const k: CheckedReport = c.compile;
    if (k.check) where.add(k.check.ranOn);
    const fused = Object.entries(c.fused).map(([n, v]) => `${n} ${v}`).join(', ') || 'none';
    // where the check ran can be a paragraph (why WebGPU did not start): said once below
    const check = k.check ? `; check ${k.check.passed ? 'ok' : 'FAILED'} (max rel ${k.check.maxRel.toExponential(1)} on ${k.check.ranOn.split(' (')[0]})` : '';
    const islands = c.fp32Islands ? `; ${c.fp32Islands} fp32 island${c.fp32Islands === 1 ? '' : 's'}` : '';
    lines.push(`  ${c.name} (${c.role}): ${k.nodesBefore} -> ${k.nodesAfter} nodes; fused: ${fused}${islands}${check}`);
    if (c.unrecognized) lines.push(`    note: ${c.unrecognized}`);
    if (explain) for (const n of c.notes) lines.push(`    ${n}`);
  }
  for (const w of where) if (w.includes(' (')) lines.push(`checks ran on ${w}`);
  lines.push(`copied ${r.copied.length} other file${r.copied.length === 1 ? '' : 's'} byte for byte; ${(r.compileMs / 1000).toFixed(1)} s`);
  return lines.join('\n');
}
