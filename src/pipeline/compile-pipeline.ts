import * as fs from 'fs';
import * as path from 'path';
import { SdcError } from '../ir/errors';
import { readModel } from '../onnx/read';
import { realPath } from '../onnx/write';
import { fusedSiteCounts } from '../passes/registry';
import { SDC_VERSION } from '../compiler/version';
import { Progress, silentProgress } from '../compiler/progress';
import { refuseUnwritableFile, writeJsonAtomic } from '../compiler/compile';
import { CheckedCompileOptions, CheckedReport, compileChecked } from '../verify/check';
import { DATA_FILE, MODEL_FILE, Pipeline, readPipeline, Role } from './layout';
import { DimOverrides, parsePipelineShapes, PipelineShape, planDims } from './dims';
import { commitFolder, firstForeignFile, inside, makeStage, resolvedTarget } from './stage-folder';

export interface PipelineCompileOptions extends Omit<CheckedCompileOptions, 'output' | 'shapes' | 'checkShapes' | 'report' | 'dataFileName' | 'progress'> {
  /** The folder to write: the same layout, every component compiled, every other file copied. */
  output?: string;
  /** The images the pipeline makes; every component's dims follow (see planDims). */
  shape?: PipelineShape;
  /** Per-component dims that replace the derived ones: `unet:sample=2x4x64x64,...` or a map. */
  shapes?: string | DimOverrides | null;
  /** Where to write the JSON report. */
  report?: string;
  progress?: Progress;
}

export interface ComponentReport {
  name: string;
  role: Role;
  /** Why sdc compiled it with the default pipeline for its target (an unknown or mismatched component). */
  unrecognized?: string;
  /** The dims it was specialized to (reduce-overhead) or checked at; null when none follow from the pipeline. */
  dims: Record<string, number[]> | null;
  notes: string[];
  /** Fused sites by kind (the registry's counters). */
  fused: Record<string, number>;
  /** Nodes kept in float32 by the fp16 conversion (0 for fp32). */
  fp32Islands: number;
  compile: CheckedReport;
}

export interface PipelineReport {
  sdcVersion: string;
  input: string;
  output: string;
  className: string | null;
  /** What the dims were derived from. */
  shape: { height: number; width: number; batch: number; cfg: boolean; vaeFactor: number; textLength: number | null };
  notes: string[];
  components: ComponentReport[];
  /** Files copied byte for byte (relative to the pipeline folder). */
  copied: string[];
  compileMs: number;
  warnings: string[];
}

/**
 * Compile a whole pipeline folder (Hugging Face Optimum's layout) into `output`: each component with its
 * role's dims, checked like any checked compile; every other file copied byte for byte. The folder is
 * built beside its destination and moved into place whole: a failure anywhere (one component's check,
 * a full disk, a kill) leaves the destination as it was.
 */
export async function compilePipeline(dir: string, opts: PipelineCompileOptions): Promise<PipelineReport> {
  const t0 = performance.now();
  const p = readPipeline(dir);
  const mode = opts.mode ?? 'default';
  if (mode === 'max-autotune') throw new SdcError(dir, 'max-autotune times one model at a time; compile a pipeline with default or reduce-overhead');
  if (!opts.output && !opts.dryRun) throw new SdcError(dir, 'compiling a pipeline needs an output folder (-o OUTDIR) or a dry run');
  const out = opts.output ? path.resolve(opts.output) : null;
  if (out) refuseOutput(p, out, opts.output!);
  if (opts.report) refuseReport(p, opts.report, out);
  const overrides = typeof opts.shapes === 'string' ? parsePipelineShapes(opts.shapes, p) : opts.shapes ?? new Map();
  const plan = planDims(p, opts.shape ?? {}, overrides);
  const warnings: string[] = [];
  if (mode === 'reduce-overhead') {
    for (const c of p.components) {
      const d = plan.components.get(c.name)!;
      if (!d.dims) throw new SdcError(c.modelFile, `reduce-overhead needs static dims for every input, and ${d.unresolved}; give --shape ${c.name}:INPUT=DIMS`);
    }
  }

  const progress = opts.progress ?? silentProgress;
  const stage = out ? makeStage(out) : null;
  try {
    const components: ComponentReport[] = [];
    for (const c of p.components) {
      const d = plan.components.get(c.name)!;
      progress.step(`${c.name}: compiling`);
      const dims = d.dims;
      const notes = [...d.notes];
      if (!dims) notes.push(`dims: ${d.unresolved}; --check ran at dims sdc chose`);
      const compile = await compileChecked(c.modelFile, {
        ...opts,
        output: stage ? path.join(stage, c.name, MODEL_FILE) : undefined,
        dataFileName: DATA_FILE,
        shapes: mode === 'reduce-overhead' ? dims : null,
        checkShapes: dims,
        report: undefined,
        progress,
      });
      const fp16 = compile.passes.find((x) => x.name === 'convert-fp16');
      components.push({
        name: c.name,
        role: c.role,
        ...(c.unrecognized ? { unrecognized: c.unrecognized } : {}),
        dims: dims ? Object.fromEntries(dims) : null,
        notes,
        fused: fusedSiteCounts(compile.passes),
        fp32Islands: fp16?.counts?.islands ?? 0,
        compile,
      });
      for (const w of compile.warnings) warnings.push(`${c.name}: ${w}`);
    }
    if (stage) {
      progress.step(`copying ${p.otherFiles.length} other files`);
      for (const f of p.otherFiles) {
        const to = path.join(stage, f);
        fs.mkdirSync(path.dirname(to), { recursive: true });
        fs.copyFileSync(path.join(p.dir, f), to);
      }
      commitFolder(stage, out!, opts.output!, () => refuseOutput(p, out!, opts.output!));
    }
    progress.done();
    const report: PipelineReport = {
      sdcVersion: SDC_VERSION,
      input: p.dir,
      output: out ?? '',
      className: p.className,
      shape: { height: plan.height, width: plan.width, batch: plan.batch, cfg: plan.cfg, vaeFactor: plan.vaeFactor, textLength: plan.textLength },
      notes: plan.notes,
      components,
      copied: p.otherFiles,
      compileMs: Math.round(performance.now() - t0),
      warnings,
    };
    if (opts.report) writeJsonAtomic(opts.report, report);
    return report;
  } catch (e) {
    if (stage) fs.rmSync(stage, { recursive: true, force: true });
    throw e;
  }
}

/**
 * The output folder must not overlap the pipeline (writing into it would compile the outputs again, or
 * replace the sources), must be a folder, and when it exists must hold only what sdc would write there.
 */
function refuseOutput(p: Pipeline, out: string, given: string): void {
  const target = resolvedTarget(out);
  const src = realPath(p.dir);
  if (inside(target, src) || inside(src, target)) throw new SdcError(given, `overlaps the pipeline folder ${p.dir}; write the compiled pipeline to a folder outside it`);
  if (!fs.existsSync(out)) return;
  const st = fs.lstatSync(out);
  if (!st.isDirectory()) throw new SdcError(given, 'exists and is not a folder; -o names the folder to write the compiled pipeline into');
  const foreign = notWrittenBySdc(p, out);
  if (foreign) throw new SdcError(given, `exists and holds ${foreign}, which sdc did not write; choose a new or empty folder (sdc replaces only a compiled pipeline of its own)`);
}

/**
 * The first file in `out` that is not what a compile of `p` writes: a component model sdc stamped, the
 * weights such a model reads, or a copy of one of the pipeline's other files with the same bytes. Null
 * when every file is one of those (or the folder is empty): replacing the folder then loses nothing.
 */
function notWrittenBySdc(p: Pipeline, out: string): string | null {
  const ours = new Set<string>();
  for (const c of p.components) {
    const model = path.join(out, c.name, MODEL_FILE);
    if (!fs.existsSync(model)) continue;
    try {
      const m = readModel(model, { allowMissingData: true });
      if (m.getMetadata('sdc.version') === undefined) return `${c.name}/${MODEL_FILE} (no sdc stamp)`;
      ours.add(path.join(c.name, MODEL_FILE));
      for (const f of m.externalFiles()) ours.add(path.relative(out, f));
    } catch {
      return `${c.name}/${MODEL_FILE} (not a model sdc can read)`;
    }
  }
  const others = new Set(p.otherFiles);
  return firstForeignFile(out, (r) => ours.has(r) || (others.has(r) && sameBytes(path.join(out, r), path.join(p.dir, r))));
}

function sameBytes(a: string, b: string): boolean {
  const sa = fs.statSync(a);
  const sb = fs.statSync(b);
  if (sa.size !== sb.size) return false;
  if (sa.size > 64 * 2 ** 20) return true; // a copy sdc made of a large file: same name and size is enough to replace it
  return fs.readFileSync(a).equals(fs.readFileSync(b));
}

function refuseReport(p: Pipeline, report: string, out: string | null): void {
  refuseUnwritableFile(report, '--report');
  const r = resolvedTarget(path.resolve(report));
  if (inside(r, realPath(p.dir))) throw new SdcError(report, '--report is inside the pipeline folder, which sdc never writes into; choose another path');
  if (out && inside(r, resolvedTarget(out))) throw new SdcError(report, '--report is inside the output folder, which sdc replaces whole; choose another path');
}
