import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { calibrate, CalibrationReport } from '../runtime/calibrate';
import { compareTensors } from '../runtime/compare';
import { checkDims, describeSynthetic, modelInputSpecs, syntheticInputs } from '../runtime/feeds';
import { CompileOptions, CompileReport, compileStaged, refuseReportPath, StagedOutput, ShapeSpec, writeJsonAtomic } from '../compiler/compile';
import { SdcError } from '../ir/errors';
import { Model } from '../ir/model';
import { readModel } from '../onnx/read';
import { createSession, fp16Unavailable, openSession, providerUnavailable, runFailure } from '../runtime/session';
import { PRECISION_KEY } from '../passes/convert-fp16';
import { TargetName, targetTraits } from '../targets';
import { opRecord } from '../ops';
import { lowerToCpu } from './lower';
import { adapterName, usingSwiftShader } from '../runtime/swiftshader';
import { openInChild, providerReason } from '../runtime/quiet-child';
import { missingKernel } from '../runtime/session';
import { analyzeShapes } from '../analysis/shapes';
import { indexRanges } from '../runtime/token-ids';
import { recommendedSession } from '../targets/session-options';

export interface CheckOptions {
  /** How many random input sets to compare on. */
  sets: number;
  /** Input dims to check at; symbolic dims are given small values otherwise (said in the report). */
  shapes?: ShapeSpec | null;
  target: TargetName;
  /** Largest max-relative difference accepted (default 1e-3). */
  tolerance?: number;
}

export interface CheckReport {
  sets: number;
  dims: Record<string, number[]>;
  /** True when the dims were chosen by sdc (no shapes given). */
  derivedDims: boolean;
  /** Where the compiled model ran: a provider, or the CPU after lowering GPU-only ops to CPU ops. */
  ranOn: string;
  /**
   * Worst max |a - b| / max |a| over every output and input set, on the finite values (the metric of
   * src/runtime/compare.ts: NaN and ±Inf are compared apart, and must match exactly).
   */
  maxRel: number;
  /** Worst mean |a - b| / mean |a| over every output and input set, on the finite values. */
  meanRel: number;
  /** NaN and ±Inf values in the original's outputs (over every set); the compiled model's must match each, position by position. */
  nonFinite: number;
  /** Where the compiled outputs hold a NaN or an Inf the original's lack, or lack one they hold (or differ in dims), in words; empty when none. */
  mismatches: string[];
  tolerance: number;
  /** No mismatch, and maxRel within the tolerance. */
  passed: boolean;
  /** What the inputs held, per input, for people (`input_ids: ids in [0, 49408)`). */
  inputs: string[];
  /** Outputs of the original that held one value everywhere over every set: a check of them proves little. */
  constantOutputs: string[];
  /** What this check could not exercise (fp16 arithmetic on the CPU), for the check line. */
  notes: string[];
}

/** What loading the output before it was moved into place showed. */
export interface LoadReport {
  /** 'onnxruntime cpu', or why the output was checked by structure only. */
  by: string;
}

const DEFAULT_TOLERANCE = 1e-3;
/** fp16 rounds every weight and activation to 11 significant bits: the bound the fp16 tests hold. */
const FP16_TOLERANCE = 2e-2;
/**
 * Run the original on the CPU and the compiled model on its target's provider (WebGPU when an adapter
 * exists; otherwise, and for cuda, on the CPU with the GPU-only ops lowered to CPU ops of the same
 * semantics) on `sets` input sets, and compare every output.
 */
/** com.microsoft ops that take WebGPU's flash-attention path */
const ATTENTION_OPS = ['MultiHeadAttention', 'Attention'];

export async function checkOutput(original: string, compiled: string, o: CheckOptions): Promise<CheckReport> {
  const model = readModel(original);
  const { dims, derived } = checkDims(model, o.shapes, original);
  const ranges = indexRanges(model);
  const specs = modelInputSpecs(model, dims, '--check').map((sp) => ({ ...sp, range: ranges.get(sp.name)?.size }));
  const tolerance = o.tolerance ?? DEFAULT_TOLERANCE;
  // the compiled graph (no weights) answers both questions below: attention ops, recorded session options
  const compiledGraph = readModel(compiled, { allowMissingData: true });
  let runFile = compiled;
  let ranOn = 'cpu';
  let scratch: string | null = null;

  // a device provider onnxruntime-node has (WebGPU) runs the output where it starts; one it lacks (CUDA) never does
  const traits = targetTraits(o.target);
  const onDevice = !traits.hostCpu && traits.nodeProvider;
  const noGpu = onDevice ? await deviceCannotRun(o.target, compiledGraph) : null;
  const onGpu = onDevice && !noGpu;
  if (onGpu) {
    ranOn = `${traits.provider} (${adapterName()})`;
    if (usingSwiftShader() && compiledGraph.graph.nodes.some((n) => ATTENTION_OPS.includes(n.opType))) {
      // SwiftShader runs WebGPU's flash-attention kernel wrongly for queries ≥ 32 (docs/webgpu.md):
      // check everything else on the provider, with attention as its definition
      scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'sdc-check-'));
      runFile = path.join(scratch, 'mha-lowered.onnx');
      lowerToCpu(compiled, runFile, ATTENTION_OPS);
      ranOn = `${traits.provider} (${adapterName()}; attention lowered: SwiftShader runs it wrongly, docs/webgpu.md)`;
    }
  } else if (cpuLacks(compiled).length) {
    scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'sdc-check-'));
    runFile = path.join(scratch, 'lowered.onnx');
    lowerToCpu(compiled, runFile);
    ranOn = `cpu (GPU-only ops lowered to CPU ops${noGpu ? `; ${traits.label} here: ${noGpu}` : ''})`;
  } else if (noGpu) {
    ranOn = `cpu (${traits.label} here: ${noGpu})`;
  }
  const quiet = () => {};
  const reference = cpuOriginal(original, () => (scratch ??= fs.mkdtempSync(path.join(os.tmpdir(), 'sdc-check-'))));
  if (reference !== original) ranOn += '; the original\'s GPU-only ops lowered too';
  const a = await createSession(reference, { executionProviders: ['cpu'], logSeverityLevel: 4 }, 'cpu', original);
  const rec = recommendedSession((k) => compiledGraph.getMetadata(k), onGpu ? o.target : 'cpu');
  const b = (await openSession(runFile, onGpu ? o.target : 'cpu', onGpu ? (rec.options as ort.InferenceSession.SessionOptions) : {}, quiet)).session;
  const constant = new Map<string, number | null>(); // output → its one value so far, null once two differ
  let maxRel = 0;
  let meanRel = 0;
  let nonFinite = 0;
  const mismatches: string[] = [];
  try {
    for (let s = 0; s < o.sets; s++) {
      // input set s: uniform [-1, 1) floats, timestep 500, 0, 999 by set (src/runtime/feeds.ts)
      const feeds = syntheticInputs(specs, { set: s });
      const ra = await a.run(feeds).catch((err: Error) => {
        // the model, not sdc, refuses these dims (inputs whose sizes must agree: a ControlNet's image and latents)
        const at = [...dims].map(([k, d]) => `${k}=${d.join('x')}`).join(',');
        throw new SdcError(original, `the original model does not run at the dims --check ${derived ? 'chose' : 'was given'} (${at}): ${err.message.split('\n')[0].replace(/^.*Status Message: /, '')}; give --shape with dims the model takes`);
      });
      const rb = await b.run(feeds);
      for (const k of a.outputNames) {
        constant.set(k, oneValue(ra[k], s === 0 ? undefined : constant.get(k)));
        const d = compareTensors(ra[k], rb[k], k);
        maxRel = Math.max(maxRel, d.maxRel);
        meanRel = Math.max(meanRel, d.meanRel);
        nonFinite += d.nonFinite;
        if (d.mismatch) mismatches.push(`input set ${s}: ${d.mismatch}`);
      }
    }
  } finally {
    await a.release();
    await b.release();
    if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
  }
  const passed = !mismatches.length && maxRel <= tolerance;
  const constantOutputs = [...constant].filter(([, v]) => v !== null).map(([k, v]) => `${k} (${v} everywhere)`);
  const notes = compiledGraph.getMetadata(PRECISION_KEY) === 'fp16' && !onGpu
    ? ['fp16 arithmetic not exercised: onnxruntime\'s CPU provider computes the float16 ops in float32 (it drops the Cast pairs), so this checks the rewrites and the fp16 rounding of weights, not fp16 computation']
    : [];
  const inputs = specs.map((sp) => `${sp.name}: ${describeSynthetic(sp, ranges.get(sp.name)?.table)}`);
  return { sets: o.sets, dims: Object.fromEntries(dims), derivedDims: derived, ranOn, maxRel, meanRel, nonFinite, mismatches, tolerance, passed, inputs, constantOutputs, notes };
}

/** The one value every element of `t` holds (and `prev`, when given), or null when two differ. */
function oneValue(t: ort.Tensor, prev?: number | null): number | null {
  if (prev === null) return null;
  const d = t.data as ArrayLike<number | bigint>;
  if (!d.length) return null;
  // 0 and -0 are one value; NaN equals NaN here
  const same = (a: number, b: number) => a === b || (a !== a && b !== b);
  const first = Number(d[0]);
  if (prev !== undefined && !same(prev, first)) return null;
  for (let i = 1; i < d.length; i++) if (!same(Number(d[i]), first)) return null;
  return first === 0 ? 0 : first;
}

/** The end of a check line: the inputs fed, then what the check could not exercise. */
export function checkLineTail(c: CheckReport): string {
  return `inputs ${c.inputs.join(', ')}${c.notes.map((n) => `; ${n}`).join('')}`;
}

/** What --check warns when an output was constant: equal constants pass at max rel 0 whatever sdc did. */
function constantNote(c: CheckReport): string {
  return `--check: output${c.constantOutputs.length === 1 ? '' : 's'} ${c.constantOutputs.join(', ')} of the original held one value over every input set: the comparison says little about ${c.constantOutputs.length === 1 ? 'it' : 'them'} (check at other dims or inputs)`;
}

/** What --check says when the original's outputs held NaN or ±Inf (a note: the check passed). */
function checkNote(c: CheckReport): string {
  return `--check: the original's outputs held ${c.nonFinite} NaN or infinite value${c.nonFinite === 1 ? '' : 's'} over ${c.sets} input set${c.sets === 1 ? '' : 's'}; the compiled model's matched each, position by position, and the relative bound (max rel ${c.maxRel.toExponential(2)}) covers the finite values only`;
}

/**
 * The most weight bytes a model may have for sdc to check it on a software WebGPU adapter (SwiftShader
 * runs the 6 MB tiny UNet in ~10-20 s a call; a full-size model would take hours): beyond, the oracle.
 */
const SOFTWARE_CHECK_BYTES = 32 * 2 ** 20;

/** Why the target's provider cannot run this compiled model here (no adapter; fp16 without shader-f16), or null. */
async function deviceCannotRun(target: TargetName, model: Model): Promise<string | null> {
  const bytes = model.graph.initializers().reduce((s, v) => s + v.initializer!.byteLength, 0);
  const small = bytes <= SOFTWARE_CHECK_BYTES;
  const why = await providerUnavailable(target, { software: small });
  if (why) return small ? why : `${why}; its ${(bytes / 2 ** 20).toFixed(0)} MB of weights are more than sdc runs on a software adapter (${SOFTWARE_CHECK_BYTES / 2 ** 20} MB)`;
  return model.getMetadata(PRECISION_KEY) === 'fp16' ? fp16Unavailable(target) : null;
}

/**
 * The original as the CPU runs it: itself, or (when it holds GPU-only ops: a cuda output compiled again)
 * a copy with those ops lowered to their definitions, written in the folder `scratch()` gives.
 */
export function cpuOriginal(original: string, scratch: () => string): string {
  if (!cpuLacks(original).length) return original;
  const lowered = path.join(scratch(), 'original-lowered.onnx');
  lowerToCpu(original, lowered);
  return lowered;
}

/** The ops of the model in `file` that the CPU provider has no kernel for and the oracle lowers (`domain::op`). */
function cpuLacks(file: string): string[] {
  const ops = new Set<string>();
  for (const g of readModel(file, { allowMissingData: true }).graph.allGraphs()) for (const n of g.nodes) if (gpuOnly(n.domain, n.opType)) ops.add(n.qualifiedOp);
  return [...ops];
}

const gpuOnly = (domain: string, op: string) => {
  const r = opRecord(domain, op);
  return !!r && typeof r.lower === 'function' && !!r.kernels && !r.kernels.cpu;
};

/**
 * Open the staged output in onnxruntime on the CPU when every op has a CPU kernel there (a session that
 * opens has checked every op, attribute and shape); an output with GPU-only ops was validated when it
 * was staged. An output onnxruntime refuses is a bug in sdc, unless onnxruntime refuses the input too.
 */
export async function loadStaged(input: string, staged: StagedOutput, target: TargetName = 'cpu', shapes?: ShapeSpec | null): Promise<LoadReport> {
  const meta = readModel(staged.modelFile, { allowMissingData: true });
  // a webgpu output opens on the WebGPU provider where one starts: its kernels are the ones that matter
  const traits = targetTraits(target);
  const onDevice = !traits.hostCpu && traits.nodeProvider;
  const noGpu = onDevice ? await deviceCannotRun(target, meta) : null;
  const onGpu = onDevice && !noGpu;
  const providers = onGpu ? recommendedSession((k) => meta.getMetadata(k), target).options.executionProviders : ['cpu'];
  // without prepacking: a session that opens has made every kernel; repacking SD1.5's weights for MLAS
  // read all 3.4 GB into ~1.1 GB of memory and took 3-6 s, without it the weights stay mapped (0.3 s, 84 MB)
  const options = {
    executionProviders: providers as ort.InferenceSession.SessionOptions['executionProviders'],
    graphOptimizationLevel: 'disabled' as const,
    logSeverityLevel: 4 as const,
    extra: { session: { disable_prepacking: '1' } },
  };
  // in a child process (quiet-child.ts): a device provider's native diagnostics stay off sdc's stderr, and
  // a model that crashes onnxruntime natively (a hostile attribute it indexes with) ends the child, not sdc
  const open = async (file: string) => {
    const why = await openInChild(file, options);
    if (why) throw new Error(why);
  };
  try {
    await open(staged.modelFile);
    return { by: `onnxruntime ${onGpu ? `${traits.provider} (${adapterName()})` : 'cpu'}` };
  } catch (e) {
    const why = (e as Error).message.split('\n')[0];
    // which ops the CPU provider runs is what a real session says (it runs function ops such as
    // GroupNormalization by their body), not a list: an op it has no kernel for leaves the structure checks
    const missing = missingKernel(why)?.op;
    if (!onGpu && missing && !traits.hostCpu) return { by: `structure only: onnxruntime's CPU provider has no kernel for ${missing}${onDevice ? ` (and ${traits.label} here: ${noGpu})` : ''}` };
    try {
      await open(input);
    } catch (e2) {
      const crashed = CRASHED.exec(why);
      if (crashed && CRASHED.test((e2 as Error).message)) throw new SdcError(input, `onnxruntime's process ended (${crashed[1]}) opening this model, the original as well as sdc's output: the model holds something onnxruntime cannot handle; nothing was written`);
      refuseInconsistent(input, why);
      return { by: `not loaded: onnxruntime cannot load the input either (${why})` };
    }
    if (shapes) await refuseDimsTheOriginalRefuses(input, shapes);
    // onnxruntime opened the input, whose sizes were hidden behind shape computations that sdc folded
    refuseInconsistent(input, why);
    throw new Error(`onnxruntime cannot load the compiled model (a bug in sdc; nothing was written): ${why}`);
  }
}

/**
 * An output onnxruntime refuses is sdc's bug only when the input was consistent: sdc's own shape analysis
 * of the input finding sizes that cannot fit (a MatMul's inner dims, a Reshape's element count, a
 * broadcast) makes it the model's problem, said naming the node, exit 2.
 */
function refuseInconsistent(input: string, why: string): void {
  const c = analyzeShapes(readModel(input, { allowMissingData: true })).conflicts[0];
  if (c) throw new SdcError(input, `is inconsistent: node '${c.node.name}' (${c.node.opType}) ${c.problem}, whatever the inputs (onnxruntime: ${providerReason(why).replace(/^Load model from \S+ failed:/, '')}); nothing was written`);
}

/** openInChild's answer when onnxruntime took the child process down (a native crash) rather than throwing. */
const CRASHED = /process ended without an answer \(([^)]*)\)/;

/** A specialization onnxruntime refuses is the user's --shape, not sdc's bug, when the original refuses those dims too. */
async function refuseDimsTheOriginalRefuses(input: string, shapes: ShapeSpec): Promise<void> {
  const model = readModel(input);
  const { dims } = checkDims(model, shapes, input);
  const why = await runFailure(input, syntheticInputs(modelInputSpecs(model, dims, '--shape')));
  const at = [...dims].map(([k, d]) => `${k}=${d.join('x')}`).join(',');
  if (why) throw new SdcError(input, `the original model does not run at --shape ${at} either: ${why}; give --shape with dims the model takes`);
}

export interface CheckedCompileOptions extends CompileOptions {
  /** With fp16: measure the model's value ranges first (calibrate()) so out-of-range regions stay fp32 (default true). */
  calibrate?: boolean;
  /** Compare the output with the original on this many random input sets before keeping it (0: no). */
  check?: number;
  checkTolerance?: number;
  /**
   * Dims --check and the fp16 calibration run the models at (default `shapes`, else dims sdc derives):
   * what a pipeline gives each component in mode default, whose output stays dynamic.
   */
  checkShapes?: ShapeSpec | null;
}

export type CheckedReport = CompileReport & { loaded?: LoadReport; check?: CheckReport; calibration?: CalibrationReport };

/**
 * compile(), and before the output is moved into place: open it in onnxruntime (or validate it when
 * its ops need a GPU), and with `check: N` compare its numbers with the original's on N input sets.
 * An output beyond tolerance is refused (SdcError, exit code 3) and nothing is written.
 */
export async function compileChecked(input: string, opts: CheckedCompileOptions): Promise<CheckedReport> {
  const prepared = await prepareChecked(input, opts);
  const { report, staged } = compileStaged(input, prepared.opts);
  return commitChecked(input, report, staged, prepared);
}

/** The options every compile of a checked door runs with, and what preparing them measured. */
export interface PreparedChecked {
  opts: CheckedCompileOptions;
  calibration?: CalibrationReport;
}

/**
 * What a checked door does before it compiles: refuse a report path it would overwrite and a --check it
 * cannot run, and with fp16 calibrate once. max-autotune calls this too, and compiles every candidate
 * with the options it returns.
 */
export async function prepareChecked(input: string, opts: CheckedCompileOptions): Promise<PreparedChecked> {
  refuseReportPath(input, opts);
  if (opts.check && opts.ioTypes === 'fp16') throw new SdcError(input, '--check feeds the original\'s float32 inputs; it cannot run with --io-types fp16 (check with fp32 I/O, the computation is the same)');
  if (opts.precision === 'fp16' && opts.calibrate !== false && !opts.ranges) {
    opts.progress?.step('calibrating value ranges (fp32, CPU)');
    const c = await calibrate(input, { shapes: opts.checkShapes ?? opts.shapes });
    return { opts: { ...opts, ranges: c.ranges }, calibration: c.report };
  }
  return { opts };
}

/** `--check N` of a compiled model against its original, with the tolerance its precision calls for. */
export function checkCompiled(input: string, compiled: string, o: { check: number; shapes?: CompileOptions['shapes']; checkShapes?: CompileOptions['shapes']; target?: TargetName; precision?: CompileOptions['precision']; checkTolerance?: number }): Promise<CheckReport> {
  const tolerance = o.checkTolerance ?? (o.precision === 'fp16' ? FP16_TOLERANCE : undefined);
  return checkOutput(input, compiled, { sets: o.check, shapes: o.checkShapes ?? o.shapes, target: o.target ?? 'cpu', tolerance });
}

/** A failed check is an SdcError with exit code 3, saying what differs and then `outcome`. */
export function refuseFailedCheck(input: string, c: CheckReport, outcome: string): void {
  if (c.mismatches.length) {
    // a NaN or an Inf on one side only (or dims that differ): no tolerance accepts it (runtime/compare.ts)
    const more = c.mismatches.length > 1 ? `; ${c.mismatches.length - 1} more output${c.mismatches.length === 2 ? '' : 's'} of the input sets differ too` : '';
    throw new SdcError(input, `the compiled model differs from the original on ${c.ranOn}: ${c.mismatches[0]}${more}; ${outcome}`, 3);
  }
  if (!c.passed) {
    throw new SdcError(input, `the compiled model differs from the original by ${c.maxRel.toExponential(2)} (max relative${c.nonFinite ? ', on the finite values' : ''}; tolerance ${c.tolerance}) on ${c.ranOn}; ${outcome}`, 3);
  }
}

/**
 * A staged output (compileStaged's) → loaded in onnxruntime → with `check`, compared with the original →
 * moved into place, or discarded if any step fails; then the report is written. The one end of every
 * checked door: compileChecked, and max-autotune with its winner. `staged` null (dry run) checks nothing.
 */
export async function commitChecked<R extends CompileReport>(input: string, report: R, staged: StagedOutput | null, prepared: PreparedChecked): Promise<R & CheckedReport> {
  const { opts, calibration } = prepared;
  const out: R & CheckedReport = report;
  if (calibration) out.calibration = calibration;
  if (staged) {
    try {
      out.loaded = await loadStaged(input, staged, opts.target ?? 'cpu', opts.shapes);
      if (opts.check) {
        opts.progress?.step(`checking on ${opts.check} input set${opts.check === 1 ? '' : 's'}`);
        out.check = await checkCompiled(input, staged.modelFile, { ...opts, check: opts.check, target: report.target });
        opts.progress?.done();
        const c = out.check;
        refuseFailedCheck(input, c, 'nothing was written');
        if (c.nonFinite) out.warnings.push(checkNote(c));
        if (c.constantOutputs.length) out.warnings.push(constantNote(c));
      }
      staged.commit();
    } catch (e) {
      staged.discard();
      throw e;
    }
  } else if (opts.check) {
    report.warnings.push('--check needs a written model; --dry-run checked nothing');
  }
  if (opts.report) writeJsonAtomic(opts.report, out);
  return out;
}
