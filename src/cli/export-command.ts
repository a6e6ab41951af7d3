import { exportTriton, TritonExportOptions, TritonExportReport } from '../serving/export-triton';

/** `sdc export triton IN... -o REPO`: the serving door; the summary says per model what its config holds. */
export async function exportTritonCommand(inputs: string[], opts: TritonExportOptions & { json?: boolean; quiet?: boolean }): Promise<string | null> {
  const report = await exportTriton(inputs, opts);
  if (opts.quiet) return null;
  if (opts.json) return JSON.stringify(report, null, 2);
  return exportSummary(report);
}

function exportSummary(r: TritonExportReport): string {
  const lines = [`Triton model repository ${r.output}: ${r.models.length} model${r.models.length === 1 ? '' : 's'}`];
  for (const m of r.models) {
    lines.push(`  ${m.name}/ (${m.target}; from ${m.component ?? m.source}): max_batch_size ${m.maxBatchSize}${m.warmup ? ', warmed up at its compiled shapes' : ''}; ${m.files.length} file${m.files.length === 1 ? '' : 's'} in ${m.name}/1/`);
    for (const n of m.notes) lines.push(`    ${n}`);
  }
  if (r.kserve) lines.push(`KServe InferenceService: ${r.kserve} (set its storageUri to where the repository is uploaded)`);
  lines.push(`serve it: tritonserver --model-repository=${r.output} --disable-auto-complete-config (docs/serving.md)`);
  return lines.join('\n');
}
