import yargs from 'yargs';
import { SdcError } from '../ir/errors';
import { formatInspect, inspect } from '../compiler/inspect';
import { readModel } from '../onnx/read';
import { refuseInvalid } from '../ir/validate';
import { MODES, Mode } from '../rewrite/pass';
import { terminalProgress } from '../compiler/progress';
import { TARGETS, Target, TargetName } from '../targets';
import { ALL_PASSES, fusedSiteCounts } from '../passes';
import { SDC_VERSION } from '../compiler/version';
import { CompileReport } from '../compiler/compile';
import { formatExplanation, formatPassRow } from '../compiler/pipeline';
import { benchCommand, placementCommand, runCommand } from './run-commands';
import { autotune, AutotuneResult } from '../autotune/autotune';
import { CheckedReport, checkLineTail, compileChecked } from '../verify/check';
import { isPipelineDir } from '../pipeline/layout';
import { compilePipelineCommand } from './pipeline-command';
import { benchPipeline, formatPipelineBench } from '../pipeline/bench-pipeline';
import { Workload, WORKLOADS } from '../pipeline/workloads';
import { cacheCommand } from './cache-command';
import { exportTritonCommand } from './export-command';

/** An argument mistake: reported with the usage line, exit 2, and no command runs. */
class UsageError extends Error {}

/** The command line: a thin door onto compile() and inspect(). */
export async function main(argv: string[]): Promise<number> {
  try {
    return await parse(argv);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    return usage(argv, e.message);
  }
}

function usage(argv: string[], message: string): number {
  const command = ['compile', 'inspect', 'run', 'bench', 'export'].find((c) => argv[0] === c);
  const line = command === 'export' ? 'sdc export triton <compiled model or pipeline folder>... -o REPO [options] (sdc export --help lists them)' : command ? `sdc ${command} <input> [options] (sdc ${command} --help lists them)` : 'sdc <command> [options] (sdc --help lists them)';
  process.stderr.write(`sdc: ${message}\nusage: ${line}\n`);
  return 2;
}

async function parse(argv: string[]): Promise<number> {
  let code = 0;
  const fail = (e: unknown) => {
    if (e instanceof UsageError) throw e;
    if (e instanceof SdcError) {
      process.stderr.write(`sdc: ${e.message}\n`);
      code = e.exitCode;
    } else {
      process.stderr.write(`sdc: internal error: ${(e as Error).stack ?? e}\n`);
      code = 1;
    }
  };
  const passList = ALL_PASSES.map((p) => `  ${p.name.padEnd(22)} ${p.description} [${TARGETS.filter((t) => !p.appliesTo?.(new Target(t))).join(', ')}]`).join('\n');
  await yargs(argv)
    .scriptName('sdc')
    .version(SDC_VERSION)
    .usage('$0 <command> [options]\n\nAhead-of-time optimizer for ONNX diffusion models (UNet, VAE, ControlNet).')
    .command(
      'compile <input>',
      'optimize a model and write the result (the input is never modified)',
      (y) =>
        y
          .positional('input', { type: 'string', describe: 'the .onnx model to compile (external data is found beside it), or a pipeline folder in Hugging Face Optimum\'s layout (model_index.json, text_encoder/, unet/, vae_decoder/, ...)' })
          .option('output', { alias: 'o', type: 'string', describe: 'where to write the compiled .onnx (its weights go to <output>.data when external), or for a pipeline the folder to write (the same layout); not needed with --dry-run' })
          .option('height', { type: 'number', describe: 'pipeline: image height in pixels; with --width and --batch every component\'s dims follow (default: 8x16 latents)' })
          .option('width', { type: 'number', describe: 'pipeline: image width in pixels' })
          .option('batch', { type: 'number', describe: 'pipeline: images per call (default 1)' })
          .option('cfg', { type: 'boolean', default: true, describe: 'pipeline: classifier-free guidance, so the UNet and ControlNet run at twice the batch (--no-cfg for turbo/LCM models)' })
          .option('mode', { choices: MODES, default: 'default' as Mode, describe: 'default: cleanups and the fusions the target runs; reduce-overhead: also specialize to --shape, fold every shape computation, report capturability; max-autotune: compile several pipelines, time them on the target at --shape, keep the fastest' })
          .option('target', { choices: TARGETS, default: 'cpu' as TargetName, describe: 'execution provider the output is for; only ops it can run are emitted' })
          .option('precision', { choices: ['fp32', 'fp16'] as const, default: 'fp32' as const, describe: 'fp16: float16 weights and computation, with float32 islands where the target has no fp16 kernel or precision needs it (--explain lists each with its reason)' })
          .option('io-types', { choices: ['fp32', 'fp16'] as const, default: 'fp32' as const, describe: 'with --precision fp16: the element type of the model\'s float inputs and outputs' })
          .option('keep-fp32', { type: 'string', describe: 'with --precision fp16: comma-separated op types or node names to keep in float32 (e.g. Softmax,/up_blocks.3/Conv)' })
          .option('calibrate', { type: 'boolean', default: true, describe: 'with --precision fp16: first run the fp32 model on the CPU (timesteps 0/500/999, small dims) and keep in float32 every node whose tensors leave fp16\'s safe range (--no-calibrate: the rules only)' })
          .option('layout', { choices: ['NCHW', 'NHWC'] as const, describe: 'webgpu: the provider layout recorded for the runtime (default NCHW: fewest kernels; NHWC ran SD1.5 1.4x faster on an H200, docs/benchmarks-gpu.md; max-autotune times both)' })
          .option('passes', { type: 'string', describe: `comma-separated passes to run instead of the mode's pipeline ("cleanup" = the repeated cleanup group), or "none" to only read and re-write. Passes:\n${passList}` })
          .option('shape', { type: 'string', describe: 'static input dims for specialization, e.g. sample=2x4x64x64,timestep=2,encoder_hidden_states=2x77x768; for a pipeline, per component: unet:sample=2x4x64x64' })
          .option('report', { type: 'string', describe: 'write a JSON report (per-pass time and node counts) to this file' })
          .option('verify-each', { type: 'boolean', default: false, describe: 'validate the graph after every pass (slower; for debugging passes)' })
          .option('explain', { type: 'boolean', default: false, describe: 'list every fusion site considered: applied, or why not' })
          .option('dry-run', { type: 'boolean', default: false, describe: 'run the passes and print the report, but write no model' })
          .option('external-data', { choices: ['auto', 'always', 'never'] as const, default: 'auto' as const, describe: 'auto: weights go to <output>.data when the input had external data or they pass 1 GiB (streamed instead of encoded in memory)' })
          .option('json', { type: 'boolean', default: false, describe: 'print the report as JSON on stdout instead of a summary' })
          .option('verbose', { alias: 'v', type: 'boolean', default: false, describe: 'also print one row per pass (nodes before -> after, time, counts)' })
          .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'print nothing but errors' })
          .option('check', { type: 'number', default: 0, describe: 'before keeping the output, run it and the original on N random input sets (at --shape, or small dims said in the report) and compare; beyond tolerance: exit 3, nothing written. webgpu runs on the WebGPU provider when an adapter exists; otherwise, and for cuda, GPU-only ops are lowered to CPU ops' })
          .option('check-tolerance', { type: 'number', describe: 'largest max-relative difference --check accepts (default 1e-3; 2e-2 with --precision fp16)' })
          // examples as an epilog: yargs' example column breaks long commands mid-token
          .epilog([
            'Examples:',
            '  # default pipeline for the CPU, checked on 2 input sets before it is written',
            '  sdc compile unet.onnx -o unet.sdc.onnx --check 2',
            '  # a static, capturable WebGPU model',
            '  sdc compile unet.onnx -o unet.webgpu.onnx --target webgpu --mode reduce-overhead \\',
            '    --shape sample=2x4x64x64,timestep=2,encoder_hidden_states=2x77x768',
            '  # read and re-write only (checks the model loads and round-trips)',
            '  sdc compile unet.onnx -o copy.onnx --passes none',
            '  # a whole Optimum pipeline folder for WebGPU, 512x512, one image per call, each component checked',
            '  sdc compile sd15/ -o sd15-webgpu/ --target webgpu --mode reduce-overhead --height 512 --width 512 --check 1',
          ].join('\n')),
      async (args) => {
        if (!args.output && !args['dry-run']) {
          code = usage(argv, 'compile needs -o OUT (or --dry-run)');
          return;
        }
        try {
          const passes = args.passes === undefined ? undefined : args.passes === 'none' ? [] : args.passes.split(',').map((s) => s.trim()).filter(Boolean);
          if (!Number.isInteger(args.check) || args.check < 0) throw new SdcError('', `--check takes a number of input sets (got ${args.check})`);
          const tol = args['check-tolerance'];
          if (tol !== undefined && !(Number.isFinite(tol) && tol >= 0)) throw new SdcError('', `--check-tolerance takes a relative difference of 0 or more, e.g. 1e-3 (got ${tol})`);
          const sizes = { height: args.height, width: args.width, batch: args.batch };
          if (isPipelineDir(args.input!)) {
            const text = await compilePipelineCommand(args.input!, {
              output: args.output, mode: args.mode, target: args.target, passes, precision: args.precision, ioTypes: args['io-types'],
              keepFp32: args['keep-fp32'] === undefined ? undefined : args['keep-fp32'].split(',').map((x) => x.trim()).filter(Boolean),
              calibrate: args.calibrate, check: args.check, checkTolerance: args['check-tolerance'], preferredLayout: args.layout,
              verifyEach: args['verify-each'], externalData: args['external-data'], dryRun: args['dry-run'], report: args.report,
              shape: { ...sizes, cfg: args.cfg }, shapes: args.shape ?? null, json: args.json, quiet: args.quiet, explain: args.explain,
            }, terminalProgress());
            if (text) process.stdout.write(text + '\n');
            return;
          }
          const stray = Object.entries(sizes).find(([, v]) => v !== undefined) ?? (args.cfg === false ? ['cfg'] : undefined);
          if (stray) throw new UsageError(`--${stray[0] === 'cfg' ? 'no-cfg' : stray[0]} describes a pipeline's images; ${args.input} is one model (give --shape)`);
          const run = args.mode === 'max-autotune' ? autotune : compileChecked;
          const report = await run(args.input!, {
            check: args.check,
            checkTolerance: args['check-tolerance'],
            output: args.output,
            mode: args.mode,
            target: args.target,
            passes,
            shapes: args.shape ?? null,
            preferredLayout: args.layout,
            precision: args.precision,
            ioTypes: args['io-types'],
            keepFp32: args['keep-fp32'] === undefined ? undefined : args['keep-fp32'].split(',').map((x) => x.trim()).filter(Boolean),
            calibrate: args.calibrate,
            verifyEach: args['verify-each'],
            report: args.report,
            externalData: args['external-data'],
            dryRun: args['dry-run'],
            progress: terminalProgress(),
          });
          if (args.quiet) return;
          for (const w of report.warnings) process.stderr.write(`sdc: note: ${w}\n`);
          process.stdout.write(args.json ? JSON.stringify(report, null, 2) + '\n' : summary(report, args.explain, args.verbose) + '\n');
          if (!args.json && 'autotune' in report) {
            const a = (report as { autotune: AutotuneResult }).autotune;
            process.stdout.write(a.timedOn ? `autotune (median ms per run on ${a.timedOn}): ${a.candidates.map((c) => `${c.name} ${c.runMs}`).join(', ')}; kept: ${a.chosen}\n` : `autotune: ${a.untimed}\n`);
          }
        } catch (e) {
          fail(e);
        }
      },
    )
    .command(
      'inspect <input>',
      'describe a model: ops, inputs and outputs, opsets, weights (reads no weight bytes)',
      (y) =>
        y
          .positional('input', { type: 'string', describe: 'the .onnx model' })
          .option('json', { type: 'boolean', default: false, describe: 'machine-readable JSON' })
          .option('placement', { type: 'boolean', default: false, describe: 'run one profiled call on the target\'s provider: nodes per provider, CPU fallbacks, host-device copies, kernels per op' })
          .option('target', { choices: TARGETS, describe: 'provider for --placement (default: the target the model was compiled for, else webgpu)' })
          .option('shape', { type: 'string', describe: 'input dims for --placement when the model\'s are dynamic' })
          .option('explain', { type: 'boolean', default: false, describe: 'with --placement: name each CPU-placed node and why' })
          .example('$0 inspect unet.onnx', 'op histogram and I/O for people')
          .example('$0 inspect unet.onnx --json | jq .ops', 'the same for scripts')
          .example('$0 inspect out.onnx --placement --explain', 'where onnxruntime runs each node (WebGPU needs an adapter)'),
      async (args) => {
        if (!args.placement && (args.target || args.shape || args.explain)) throw new UsageError('--target, --shape and --explain go with --placement');
        try {
          if (args.placement) {
            process.stdout.write((await placementCommand(args.input!, args.shape, { target: args.target, json: args.json, explain: args.explain })) + '\n');
            return;
          }
          // inspect reads no weights, so a graph whose data files are absent can still be described
          const model = readModel(args.input!, { allowMissingData: true });
          refuseInvalid(model, args.input!);
          const r = inspect(model);
          process.stdout.write((args.json ? JSON.stringify(r, null, 2) : formatInspect(r)) + '\n');
        } catch (e) {
          fail(e);
        }
      },
    )
    .command(
      'export <format> <inputs..>',
      'write a Triton Inference Server model repository from compiled models or a compiled pipeline folder (docs/serving.md)',
      (y) =>
        y
          .positional('format', { choices: ['triton'] as const, describe: 'triton: a Triton model repository (config.pbtxt per model, weights beside each model)' })
          .positional('inputs', { type: 'string', array: true, describe: 'compiled .onnx models (several shape specializations become separately named models), or one compiled pipeline folder' })
          .option('output', { alias: 'o', type: 'string', demandOption: true, describe: 'the repository folder to write (an earlier export there is replaced whole; anything else there is refused)' })
          .option('name', { type: 'string', describe: 'one model: its name in the repository (default: its file name); a pipeline: the prefix of its components\' names' })
          .option('instances', { type: 'number', describe: 'model instances per GPU (cuda models) or in all (cpu models); default 1' })
          .option('gpus', { type: 'string', describe: 'comma-separated GPU indices to place the instances of cuda models on (default: every GPU)' })
          .option('max-batch', { type: 'number', describe: 'max_batch_size for models whose batch dim is dynamic, with dynamic batching (default 4; 0: no batching). Static specializations always get 0' })
          .option('kserve', { type: 'boolean', default: false, describe: 'also write inferenceservice.yaml, a KServe InferenceService for the repository' })
          .option('json', { type: 'boolean', default: false, describe: 'print the report as JSON' })
          .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'print nothing but errors' })
          .example('$0 export triton sd15-cuda/ -o repo --gpus 0,1 --kserve', 'a compiled pipeline: one model per component')
          .example('$0 export triton unet-b1.onnx unet-b2.onnx -o repo', 'two shape specializations: models unet-b1 and unet-b2'),
      async (args) => {
        try {
          const gpus = args.gpus?.split(',').map((g) => g.trim());
          if (gpus?.some((g) => !/^[0-9]+$/.test(g))) throw new SdcError('', `--gpus takes comma-separated GPU indices, e.g. 0,1 (got '${args.gpus}')`);
          const text = await exportTritonCommand(args.inputs!, {
            output: args.output, name: args.name, instances: args.instances, gpus: gpus?.map(Number), maxBatch: args['max-batch'], kserve: args.kserve, json: args.json, quiet: args.quiet,
          });
          if (text) process.stdout.write(text + '\n');
        } catch (e) {
          fail(e);
        }
      },
    )
    .command(
      'run <input>',
      'run a model through the sdc runtime (compiles or reuses the cached specialization) and summarize its outputs',
      (y) =>
        y
          .positional('input', { type: 'string', describe: 'the .onnx model (original or compiled)' })
          .option('shape', { type: 'string', demandOption: true, describe: 'every input\'s dims, e.g. sample=2x4x64x64,timestep=2,encoder_hidden_states=2x77x768' })
          .option('cache-dir', { type: 'string', describe: 'folder of compiled specializations (default $SDC_CACHE_DIR or ~/.cache/sdc)' })
          .option('mode', { choices: ['reduce-overhead', 'default'] as const, default: 'reduce-overhead' as const, describe: 'reduce-overhead: one static specialization per shape; default: one generic model' })
          .option('target', { choices: TARGETS, default: 'cpu' as TargetName })
          .example('$0 run unet.onnx --shape sample=1x4x64x64,timestep=1,encoder_hidden_states=1x77x768', 'first call compiles; later calls load from the cache'),
      async (args) => {
        try {
          process.stdout.write((await runCommand(args.input!, args.shape, { cacheDir: args['cache-dir'], target: args.target, mode: args.mode })) + '\n');
        } catch (e) {
          fail(e);
        }
      },
    )
    .command(
      'bench <input>',
      'time the original and the compiled model side by side in one run (alternated runs, medians, ratios); for a pipeline folder, whole workloads (txt2img, img2img, inpainting, ControlNet)',
      (y) =>
        y
          .positional('input', { type: 'string', describe: 'the original .onnx model, or a pipeline folder in Optimum\'s layout' })
          .option('shape', { type: 'string', describe: 'every input\'s dims (a model: required; a pipeline: per component overrides, unet:sample=...)' })
          .option('runs', { type: 'number', describe: 'timed runs (a pipeline: images) of each, after one warm-up (default 10; a pipeline 3)' })
          .option('check', { type: 'number', default: 0, describe: 'compare the compiled model with the original on N input sets first (as compile --check)' })
          .option('mode', { choices: ['default', 'reduce-overhead'] as const, describe: 'how sdc compiles (default: default; a pipeline reduce-overhead)' })
          .option('target', { choices: TARGETS, default: 'cpu' as TargetName })
          .option('height', { type: 'number', describe: 'pipeline: image height in pixels' })
          .option('width', { type: 'number', describe: 'pipeline: image width in pixels' })
          .option('batch', { type: 'number', describe: 'pipeline: images per call (default 1)' })
          .option('cfg', { type: 'boolean', default: true, describe: 'pipeline: classifier-free guidance (--no-cfg for turbo/LCM models)' })
          .option('steps', { type: 'number', default: 4, describe: 'pipeline: denoising steps per image' })
          .option('workload', { type: 'string', describe: `pipeline: comma-separated workloads (${WORKLOADS.join(', ')}; default: every one the pipeline runs)` })
          .option('precision', { choices: ['fp32', 'fp16'] as const, default: 'fp32' as const, describe: 'pipeline: how sdc compiles it' })
          .option('json', { type: 'boolean', default: false, describe: 'pipeline: the report as JSON' })
          .example('$0 bench unet.onnx --shape sample=2x4x32x32,timestep=2,encoder_hidden_states=2x77x768', 'speed and session-creation ratios')
          .example('$0 bench sd15/ --height 256 --width 256 --steps 4', 'txt2img and img2img as exported vs compiled: seconds per image, per-stage ms, the images compared'),
      async (args) => {
        try {
          if (args.runs !== undefined && (!Number.isInteger(args.runs) || args.runs < 1)) throw new SdcError('', `--runs takes a number of timed runs, at least 1 (got ${args.runs})`);
          if (!Number.isInteger(args.check) || args.check < 0) throw new SdcError('', `--check takes a number of input sets (got ${args.check})`);
          if (isPipelineDir(args.input!)) {
            const workloads = args.workload?.split(',').map((w) => w.trim()).filter(Boolean);
            const bad = workloads?.find((w) => !WORKLOADS.includes(w as Workload));
            if (bad) throw new UsageError(`--workload '${bad}': choose from ${WORKLOADS.join(', ')}`);
            const r = await benchPipeline(args.input!, {
              target: args.target, mode: args.mode, precision: args.precision, steps: args.steps, runs: args.runs,
              shape: { height: args.height, width: args.width, batch: args.batch, cfg: args.cfg }, workloads: workloads as Workload[] | undefined, progress: terminalProgress(),
            });
            process.stdout.write((args.json ? JSON.stringify(r, null, 2) : formatPipelineBench(r)) + '\n');
            if (r.workloads.some((w) => !w.imagesAgree)) code = 3;
            return;
          }
          if (!args.shape) throw new UsageError('bench needs --shape for a model (every input\'s dims)');
          process.stdout.write((await benchCommand(args.input!, args.shape, { target: args.target, runs: args.runs ?? 10, mode: args.mode ?? 'default', check: args.check })) + '\n');
        } catch (e) {
          fail(e);
        }
      },
    )
    .command(cacheCommand(fail))
    .demandCommand(1, 'name a command: compile, inspect, run, bench, export or cache (see --help)')
    .strict()
    .help()
    .wrap(Math.min(120, process.stdout.columns || 100))
    .exitProcess(false)
    // yargs goes on to run the command after a failed check unless the handler throws
    .fail((msg, err) => {
      throw err ?? new UsageError(msg);
    })
    .parseAsync();
  return code;
}

/** Node-count changes per op, largest first: what a person wants to see of a compile. */
function opChanges(before: Record<string, number>, after: Record<string, number>, most = 8): string {
  const short = (op: string) => op.replace(/^ai\.onnx::/, '').replace(/^com\.microsoft::/, 'ms.');
  const changes = [...new Set([...Object.keys(before), ...Object.keys(after)])]
    .map((op) => ({ op, a: before[op] ?? 0, b: after[op] ?? 0 }))
    .filter((c) => c.a !== c.b)
    .sort((x, y) => Math.abs(y.b - y.a) - Math.abs(x.b - x.a) || x.op.localeCompare(y.op));
  const shown = changes.slice(0, most).map((c) => `${short(c.op)} ${c.a} -> ${c.b}`);
  return shown.length ? `${shown.join(', ')}${changes.length > most ? `, … (${changes.length - most} more; --json has all)` : ''}` : 'none';
}

/** Sites fused, by the counters the registry marks as fused sites. */
function fusedSites(r: CompileReport): string {
  const list = Object.entries(fusedSiteCounts(r.passes)).map(([k, v]) => `${k} ${v}`);
  return list.length ? list.join(', ') : 'none';
}

function summary(r: CompileReport & CheckedReport, explain: boolean, verbose: boolean): string {
  const lines = [`${r.input} -> ${r.output}${r.dataFile ? ` (+ ${r.dataFile})` : ''}`];
  lines.push(`${r.mode} for ${r.target}: ${r.nodesBefore} -> ${r.nodesAfter} nodes in ${(r.compileMs / 1000).toFixed(2)} s, peak memory ${r.peakMemoryMb} MB`);
  lines.push(`fused: ${fusedSites(r)}`);
  lines.push(`ops: ${opChanges(r.opsBefore, r.opsAfter)}`);
  if (r.loaded) lines.push(`verified before writing: ${r.loaded.by}`);
  if (r.check) {
    const c = r.check;
    const dims = Object.entries(c.dims).map(([k, d]) => `${k}=${d.join('x')}`).join(',');
    lines.push(`check: ${c.sets} input set${c.sets === 1 ? '' : 's'} at ${dims}${c.derivedDims ? ' (dims chosen by sdc; give --shape for yours)' : ''} on ${c.ranOn}: max rel ${c.maxRel.toExponential(2)}, mean rel ${c.meanRel.toExponential(2)} (tolerance ${c.tolerance}) ${c.passed ? 'ok' : 'FAILED'}; ${checkLineTail(c)}`);
  }
  if (verbose) {
    lines.push('passes:');
    for (const p of r.passes) lines.push(`  ${formatPassRow(p)}`);
  }
  if (explain) {
    lines.push('sites:');
    for (const e of r.explanations) lines.push(`  ${formatExplanation(e)}`);
  }
  return lines.join('\n');
}
