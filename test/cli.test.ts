import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { DataType } from '../src/ir/dtype';
import { ModelBuilder } from '../src/ir/builder';
import { saveModel } from '../src/onnx/write';
import { FIXTURES, TINY, tinyPath, tmpDir } from './helpers/ort';
import { noWebgpuTest } from './helpers/webgpu';

const dir = tmpDir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const SDC = path.resolve(__dirname, '..', 'bin', 'sdc');
const sdc = (...args: string[]) => spawnSync(SDC, args, { encoding: 'utf8' });

test.each(TINY)('inspect --json of %s reports what compile --passes none preserves', (name) => {
  const out = path.join(dir, `${name}.onnx`);
  const report = path.join(dir, `${name}.json`);
  const c = sdc('compile', tinyPath(name), '-o', out, '--passes', 'none', '--report', report);
  expect(c.status).toBe(0);
  const r = JSON.parse(fs.readFileSync(report, 'utf8'));
  for (const k of ['input', 'output', 'mode', 'target', 'compileMs', 'passes']) expect(r).toHaveProperty(k);
  expect(r.passes).toEqual([]);
  const a = JSON.parse(sdc('inspect', tinyPath(name), '--json').stdout);
  const b = JSON.parse(sdc('inspect', out, '--json').stdout);
  expect(b.ops).toEqual(a.ops);
  expect(b.inputs).toEqual(a.inputs);
  expect(Object.keys(a.ops).every((k) => k.includes('::'))).toBe(true);
  expect(a.ops['ai.onnx::Conv']).toBeGreaterThan(0);
  expect(a.weights.inlineBytes).toBeGreaterThan(1_000_000);
});

test('inspect prints a readable summary', () => {
  const r = sdc('inspect', tinyPath('unet_sdpa_op17'));
  expect(r.status).toBe(0);
  expect(r.stdout).toMatch(/1860 nodes/);
  expect(r.stdout).toMatch(/sample: float \[batch, 4, height, width\]/);
});

test('--help explains the options with an example, and usage errors exit 2', () => {
  const h = sdc('compile', '--help');
  expect(h.status).toBe(0);
  for (const opt of ['--mode', '--target', '--passes', '--report', '--verify-each', '--shape']) expect(h.stdout).toContain(opt);
  expect(h.stdout).toMatch(/Examples:/);
  const bad = sdc('compile', tinyPath('unet_sdpa_op17'), '-o', path.join(dir, 'x.onnx'), '--target', 'tpu');
  expect(bad.status).toBe(2);
  expect(bad.stderr).toMatch(/target/);
});

test('--shape in mode default is said to have no effect, not silently dropped', () => {
  const r = sdc('compile', tinyPath('unet_sdpa_op17'), '-o', path.join(dir, 'noted.onnx'), '--shape', 'sample=1x4x32x32,timestep=1,encoder_hidden_states=1x16x32');
  expect(r.status).toBe(0);
  expect(r.stderr).toMatch(/--shape is used by reduce-overhead and max-autotune/);
});

test('inspect describes a graph whose weights are absent, and says they are', () => {
  const r = sdc('inspect', path.join(FIXTURES, 'models', 'sd15', 'unet_sdpa_op17.graph.onnx'), '--json');
  expect(r.status).toBe(0);
  const j = JSON.parse(r.stdout);
  expect(j.nodes).toBe(4493);
  expect(j.weights.externalBytes).toBeGreaterThan(3_000_000_000);
  expect(j.externalFiles.every((f: { exists: boolean }) => !f.exists)).toBe(true);
  const c = sdc('compile', path.join(FIXTURES, 'models', 'sd15', 'unet_sdpa_op17.graph.onnx'), '-o', path.join(dir, 'nope.onnx'));
  expect(c.status).toBe(2);
  expect(c.stderr).toMatch(/external data file .* is missing/);
});

describe('argument mistakes: one message, the usage line, exit 2, nothing written, no stack', () => {
  test.each([
    ['a misspelt option', ['--mdoe', 'reduce-overhead'], /Unknown argument: mdoe/],
    ['a mode that does not exist', ['--mode', 'fast'], /Invalid values:[\s\S]*mode/],
    ['no -o', [], /compile needs -o OUT \(or --dry-run\)/],
  ])('compile with %s', (_what, extra, message) => {
    const out = path.join(dir, `usage-${extra.join('')}.onnx`);
    const r = sdc('compile', tinyPath('unet_sdpa_op17'), ...(extra.length ? ['-o', out] : []), ...extra);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).toMatch(/^usage: sdc compile <input> \[options\]/m);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(r.stderr.match(/^sdc: /gm)).toHaveLength(1);
    expect(fs.existsSync(out)).toBe(false);
  });

  test('run and bench without --shape say so instead of crashing', () => {
    // bench takes a pipeline folder without --shape too, so it asks for --shape itself for a model
    for (const [cmd, message] of [['run', /Missing required argument: shape/], ['bench', /^sdc: bench needs --shape for a model \(every input's dims\)\nusage: sdc bench/]] as const) {
      const r = sdc(cmd, tinyPath('unet_sdpa_op17'));
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).not.toMatch(/TypeError/);
    }
  });

  test('--dry-run needs no -o and writes nothing', () => {
    const r = sdc('compile', tinyPath('unet_sdpa_op17'), '--dry-run');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/1860 -> 515 nodes/);
    expect(fs.existsSync(`${tinyPath('unet_sdpa_op17')}.sdc.onnx`)).toBe(false);
  });
});

describe('shapes that cannot hold are refused before anything is written', () => {
  test('--shape that the graph cannot compute with (odd latent through the down/up path) names the node', () => {
    const out = path.join(dir, 'odd.onnx');
    const r = sdc('compile', tinyPath('unet_sdpa_op17'), '-o', out, '--mode', 'reduce-overhead', '--shape', 'sample=1x4x31x31,timestep=1,encoder_hidden_states=1x16x32');
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/contradicts the model at node '\/m\/up_blocks\.1\/Concat' \(Concat\): concatenates tensors whose dim 2 differs/);
    expect(fs.existsSync(out)).toBe(false);
  });

  test('reduce-overhead without --shape on a model with symbolic dims', () => {
    const out = path.join(dir, 'nodims.onnx');
    const r = sdc('compile', tinyPath('unet_sdpa_op17'), '-o', out, '--mode', 'reduce-overhead');
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/reduce-overhead specializes the model to static shapes: give --shape for sample \[batch/);
    expect(fs.existsSync(out)).toBe(false);
  });

  test('reduce-overhead without --shape is fine when every input is already static (dynamo export)', () => {
    const r = sdc('compile', tinyPath('unet_dynamo_op18'), '--dry-run', '--mode', 'reduce-overhead');
    expect(r.status).toBe(0);
  });
});

test('compile --check N verifies the output before writing it and says how', () => {
  const out = path.join(dir, 'checked.onnx');
  const r = sdc('compile', tinyPath('unet_dynamo_op18'), '-o', out, '--check', '1');
  expect(r.status).toBe(0);
  expect(r.stdout).toMatch(/^verified before writing: onnxruntime cpu$/m);
  expect(r.stdout).toMatch(/^check: 1 input set at sample=2x4x32x32,timestep=2,encoder_hidden_states=2x16x32 on cpu: max rel \S+, mean rel \S+ \(tolerance 0\.001\) ok; inputs sample: uniform in \[-1, 1\), timestep: timesteps 500, 0, 999 by set, encoder_hidden_states: uniform in \[-1, 1\)$/m);
  expect(sdc('compile', tinyPath('unet_dynamo_op18'), '-o', out, '--check', '-1').status).toBe(2);
});

test('compile --mode max-autotune --check N loads and checks the kept candidate; a failed check exits 3, nothing written', () => {
  const args = (out: string, ...extra: string[]) => ['compile', tinyPath('unet_sdpa_op17'), '-o', out, '--mode', 'max-autotune', '--shape', 'sample=1x4x16x16,timestep=1,encoder_hidden_states=1x16x32', '--check', '2', ...extra];
  const out = path.join(dir, 'tuned', 'x.onnx');
  const r = sdc(...args(out));
  expect(r.status).toBe(0);
  expect(r.stdout).toMatch(/^verified before writing: onnxruntime cpu$/m);
  expect(r.stdout).toMatch(/^check: 2 input sets at sample=1x4x16x16,timestep=1,encoder_hidden_states=1x16x32 on cpu: max rel \S+, mean rel \S+ \(tolerance 0\.001\) ok; inputs sample: uniform in \[-1, 1\), timestep: timesteps 500, 0, 999 by set, encoder_hidden_states: uniform in \[-1, 1\)$/m);
  expect(r.stdout).toMatch(/^autotune \(median ms per run on cpu\): .*; kept: /m);
  expect(fs.readdirSync(path.dirname(out))).toEqual(['x.onnx']);
  // every candidate differs from the original by ~1e-6: a 1e-9 tolerance refuses whichever is kept
  const bad = path.join(dir, 'tuned-refused', 'x.onnx');
  const f = sdc(...args(bad, '--check-tolerance', '1e-9'));
  expect(f.status).toBe(3);
  expect(f.stderr).toMatch(/^sdc: \S*unet_sdpa_op17\.onnx: the compiled model differs from the original by \S+ \(max relative; tolerance 1e-9\) on cpu; nothing was written$/m);
  expect(fs.existsSync(path.dirname(bad)) ? fs.readdirSync(path.dirname(bad)) : []).toEqual([]);
});

describe('what compile prints', () => {
  const model = () => tinyPath('unet_sdpa_op17');
  test('by default a short summary: nodes, time, memory, fused sites, op changes; no per-pass rows', () => {
    const r = sdc('compile', model(), '-o', path.join(dir, 'summary.onnx'));
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^default for cpu: 1860 -> 515 nodes in \d+\.\d\d s, peak memory \d+ MB$/m);
    expect(r.stdout).toMatch(/^fused: attention 12, skipLayerNorm 12, gelu 6$/m);
    expect(r.stdout).toMatch(/^ops: .*Softmax 12 -> 0|^ops: .*Shape \d+ -> \d+/m);
    expect(r.stdout).not.toMatch(/fold-constants/);
    expect(r.stdout.trim().split('\n').length).toBeLessThanOrEqual(6);
  });

  test('--verbose adds a row per pass; --quiet prints nothing', () => {
    const v = sdc('compile', model(), '-o', path.join(dir, 'verbose.onnx'), '--verbose');
    expect(v.stdout).toMatch(/^ {2}fuse-attention +\d+ -> \d+ +\d+ ms attention=12/m);
    const q = sdc('compile', model(), '-o', path.join(dir, 'quiet.onnx'), '--quiet', '--mode', 'default', '--shape', 'sample=1x4x32x32');
    expect(q.status).toBe(0);
    expect(q.stdout).toBe('');
    expect(q.stderr).toBe(''); // not even the note that default mode keeps dims symbolic
    expect(fs.existsSync(path.join(dir, 'quiet.onnx'))).toBe(true);
  });

  test('SDC_LOG=passes,fusions streams pass rows and fusion sites to stderr', () => {
    const r = spawnSync(SDC, ['compile', model(), '-o', path.join(dir, 'logged.onnx'), '--quiet'], { encoding: 'utf8', env: { ...process.env, SDC_LOG: 'passes,fusions' } });
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/^sdc\[passes\]: fold-constants +1860 -> /m);
    expect(r.stderr).toMatch(/^sdc\[fusions\]: \[fuse-attention\/attention\] \S+: applied \(4d heads=/m);
    expect(r.stderr.match(/^sdc\[fusions\]: \[fuse-attention\/attention\].*applied/gm)).toHaveLength(12);
  });
});

test("the README's first command runs on the model the repository ships", () => {
  const readme = fs.readFileSync(path.join(__dirname, '..', 'README.md'), 'utf8');
  const first = /```sh\n(.*)\n/.exec(readme)![1];
  const m = /^npm ci && \.\/bin\/sdc (.*?)(?:\s+#.*)?$/.exec(first);
  expect(m).not.toBeNull();
  const args = m![1].split(/\s+/).map((a) => (a === 'unet.sdc.onnx' ? path.join(dir, 'readme.onnx') : a));
  const r = spawnSync(SDC, args, { encoding: 'utf8', cwd: path.join(__dirname, '..') });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  expect(fs.existsSync(path.join(dir, 'readme.onnx'))).toBe(true);
});

test('sdc run with dims the model cannot take: exit 2 naming the node, no stack', () => {
  const r = sdc('run', tinyPath('unet_sdpa_op17'), '--shape', 'sample=1x4x31x31,timestep=1,encoder_hidden_states=1x16x32', '--cache-dir', path.join(dir, 'run-cache'));
  expect(r.status).toBe(2);
  expect(r.stderr).toMatch(/contradicts the model at node '\/m\/up_blocks\.1\/Concat'/);
  expect(r.stderr).not.toMatch(/internal error|\n\s+at /);
});

describe("run and bench: the user's mistakes are one sdc: line naming the file, exit 2, no stack", () => {
  const oneLine = (r: ReturnType<typeof sdc>) => {
    expect(r.status).toBe(2);
    expect(r.stderr).not.toMatch(/internal error|\n\s+at /);
    expect(r.stderr.match(/^sdc: /gm)).toHaveLength(1);
  };

  test.each(['run', 'bench'])('%s with a --shape that leaves inputs out names them, as compile does', (cmd) => {
    const r = sdc(cmd, tinyPath('unet_sdpa_op17'), '--shape', 'sample=1x4x16x16', ...(cmd === 'run' ? ['--cache-dir', path.join(dir, 'partial-cache')] : []));
    oneLine(r);
    expect(r.stderr).toMatch(/^sdc: \S*unet_sdpa_op17\.onnx: --shape leaves 'timestep' \[batch\], 'encoder_hidden_states' \[batch, sequence, 32\] without dims; give every input's dims$/m);
  });

  test('run on a model with an input sdc cannot synthesize (a string) says which, before compiling', () => {
    const b = new ModelBuilder();
    const x = b.input('names', [2], DataType.STRING);
    b.output(b.op('Identity', [x]), [2], DataType.STRING);
    const model = saveModel(b.model, path.join(dir, 'string-input.onnx'));
    const r = sdc('run', model, '--shape', 'names=2', '--cache-dir', path.join(dir, 'string-cache'));
    oneLine(r);
    expect(r.stderr).toMatch(/^sdc: \S*string-input\.onnx: input 'names' is string: sdc run, bench, inspect --placement and max-autotune make synthetic inputs of types float32, .*bool only$/m);
  });

  test('run feeds an int64 input (the one input generator fills it) and summarizes an int64 output', () => {
    const b = new ModelBuilder();
    const x = b.input('ids', [2], DataType.INT64);
    b.output(b.op('Identity', [x]), [2], DataType.INT64);
    const model = saveModel(b.model, path.join(dir, 'int64-input.onnx'));
    const r = sdc('run', model, '--shape', 'ids=2', '--cache-dir', path.join(dir, 'int64-cache'));
    expect([r.status, r.stderr]).toEqual([0, expect.not.stringMatching(/internal error/)]);
    expect(r.stdout).toMatch(/int64\[2\] mean 1\.00000/);
  });

  test('bench --runs 0 is refused, not a crash after the compile', () => {
    oneLine(sdc('bench', tinyPath('unet_sdpa_op17'), '--shape', 'sample=1x4x16x16,timestep=1,encoder_hidden_states=1x16x32', '--runs', '0'));
  });

  test('dims the original model itself cannot run (batch 0): compile --shape and run say so, exit 2, not "a bug in sdc"; dims too large for an input: refused before anything runs', () => {
    const zero = 'sample=0x4x8x8,timestep=0,encoder_hidden_states=0x16x32';
    const out = path.join(dir, 'batch0.onnx');
    const c = sdc('compile', tinyPath('unet_sdpa_op17'), '-o', out, '--mode', 'reduce-overhead', '--shape', zero);
    oneLine(c);
    // sdc's shape analysis sees it first (a Reshape of 0 elements into [0, 32, -1]); onnxruntime's refusal of the original is the fallback
    expect(c.stderr).toMatch(/: --shape sample=0x4x8x8,timestep=0,encoder_hidden_states=0x16x32 contradicts the model at node '[^']+' \(Reshape\): reshapes 0 elements into \[0, 32, -1\]$|: the original model does not run at --shape sample=0x4x8x8,timestep=0,encoder_hidden_states=0x16x32 either: .*cannot be reshaped.*; give --shape with dims the model takes$/m);
    expect(fs.existsSync(out)).toBe(false);
    const cacheDir = path.join(dir, 'batch0-cache');
    const r = sdc('run', tinyPath('unet_sdpa_op17'), '--shape', zero, '--cache-dir', cacheDir);
    oneLine(r);
    expect(r.stderr).toMatch(/: --shape sample=0x4x8x8,timestep=0,encoder_hidden_states=0x16x32 contradicts the model at node '[^']+' \(Reshape\)|: the model does not run at these input dims \(sample:float32\[0x4x8x8\].*\): .*cannot be reshaped/);
    // refused before the runtime made its cache (the shape analysis), or with nothing cached
    expect(fs.existsSync(cacheDir) ? fs.readdirSync(cacheDir) : []).toEqual([]);
    for (const args of [['compile', '-o', path.join(dir, 'huge.onnx'), '--check', '1'], ['run', '--cache-dir', cacheDir]]) {
      const h = sdc(args[0], tinyPath('unet_sdpa_op17'), ...args.slice(1), '--shape', 'sample=100000x4x1000x1000,timestep=1,encoder_hidden_states=1x16x32');
      oneLine(h);
      expect(h.stderr).toMatch(/--shape makes 'sample' 100000x4x1000x1000: 400000000000 values, more than sdc makes for one synthetic input \(2147483648\); give smaller dims$/m);
    }
    expect(fs.existsSync(path.join(dir, 'huge.onnx'))).toBe(false);
  });

  test('run and bench on a cuda output: run on the cpu through its lowered ops; bench on a provider that cannot start is refused, not timed on another', () => {
    const { compiledTiny } = require('./helpers/compiled') as typeof import('./helpers/compiled');
    const cuda = compiledTiny('unet_sdpa_op17', { target: 'cuda' }).file;
    const shape = 'sample=1x4x8x8,timestep=1,encoder_hidden_states=1x8x32';
    const run = sdc('run', cuda, '--shape', shape, '--cache-dir', path.join(dir, 'cuda-run-cache'));
    expect([run.status, run.stderr]).toEqual([0, '']);
    expect(run.stdout).toMatch(/^out_sample: float32\[1x4x8x8\]/m);
    const bench = sdc('bench', cuda, '--shape', shape, '--runs', '1', '--target', 'cuda');
    oneLine(bench);
    expect(bench.stderr).toMatch(/^sdc: \S+: bench times the model on the cuda provider, which cannot start here \(.*\); bench where it runs, or with --target cpu$/m);
  });
});

test('compile() from code: dryRun needs no output', async () => {
  const { compile } = await import('../src/compiler/compile');
  const r = compile(tinyPath('unet_dynamo_op18'), { dryRun: true });
  expect(r.nodesAfter).toBe(424);
  expect(() => compile(tinyPath('unet_dynamo_op18'), {})).toThrow(/needs an output path/);
});

test('no test, benchmark or fixture code reads ../shared: the repository tests itself', () => {
  const root = path.join(__dirname, '..');
  const offenders: string[] = [];
  const scan = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) scan(p);
      else if (p !== __filename && /\.(ts|js)$/.test(e.name) && /['"`]\.\.\/shared|'\.\.', 'shared'|SDC_SHARED/.test(fs.readFileSync(p, 'utf8'))) offenders.push(path.relative(root, p));
    }
  };
  for (const d of ['src', 'test', 'bench', 'fixtures']) scan(path.join(root, d));
  expect(offenders).toEqual([]);
});

test('compile --help keeps each example command whole on its lines', () => {
  const r = spawnSync(SDC, ['compile', '--help'], { encoding: 'utf8', env: { ...process.env, COLUMNS: '80' } });
  expect(r.stdout).toMatch(/^ {4}--shape sample=2x4x64x64,timestep=2,encoder_hidden_states=2x77x768$/m);
  expect(r.stdout).toMatch(/^ {2}sdc compile unet\.onnx -o unet\.sdc\.onnx --check 2$/m);
});

describe('the other outputs and commands', () => {
  test('--explain lists every fusion site with its rule and status; --json is the whole report', () => {
    const e = sdc('compile', tinyPath('unet_sdpa_op17'), '--dry-run', '--explain', '--target', 'webgpu');
    expect(e.status).toBe(0);
    const sites = e.stdout.split('\n').filter((l) => l.startsWith('  [fuse-'));
    expect(sites.filter((l) => /^ {2}\[fuse-attention\/attention\] .*: applied/.test(l))).toHaveLength(12);
    // onnxruntime-web's JSEP kernel takes the CUDA sizes only (docs/targets.md): skipped at the tiny model's 512
    expect(sites.filter((l) => /^ {2}\[fuse-gelu\/bias-split-gelu\] .*: skipped \(webgpu's BiasSplitGelu kernel takes hidden 2560\/5120\/10240 \(got 512\)\)/.test(l))).toHaveLength(6);
    const cuda = sdc('compile', tinyPath('unet_sdpa_op17'), '--dry-run', '--explain', '--target', 'cuda');
    expect(cuda.stdout).toMatch(/\[fuse-gelu\/bias-split-gelu\] .*: skipped \(cuda's BiasSplitGelu kernel takes hidden 2560\/5120\/10240 \(got 512\)\)/);
    const j = sdc('compile', tinyPath('unet_sdpa_op17'), '--dry-run', '--json');
    const report = JSON.parse(j.stdout);
    expect(report).toMatchObject({ mode: 'default', target: 'cpu', nodesBefore: 1860, nodesAfter: 515 });
    expect(report.explanations.length).toBeGreaterThan(12);
  });

  test('sdc bench times the original and the compiled model side by side and says the ratios', () => {
    const r = sdc('bench', tinyPath('unet_dynamo_op18'), '--shape', 'sample=2x4x32x32,timestep=2,encoder_hidden_states=2x16x32', '--runs', '2', '--check', '1');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^session create: original \d+ ms, compiled \d+ ms \(\d+\.\d\dx\)$/m);
    expect(r.stdout).toMatch(/^run, median of 2 alternated: original \S+ ms, compiled \S+ ms \(\d+\.\d\dx\)$/m);
    expect(r.stdout).toMatch(/^check: 1 input sets on cpu: max rel \S+ \(tolerance 0\.001\) ok; inputs sample: uniform in \[-1, 1\), timestep: timesteps 500, 0, 999 by set, encoder_hidden_states: uniform in \[-1, 1\)$/m);
  });
});

test('--precision fp16 calibrates first (the report says on what), --keep-fp32 and --no-calibrate are honoured', () => {
  const j = sdc('compile', tinyPath('unet_dynamo_op18'), '--dry-run', '--json', '--precision', 'fp16', '--keep-fp32', 'Conv');
  expect(j.status).toBe(0);
  const report = JSON.parse(j.stdout);
  expect(report.calibration).toMatchObject({ timesteps: [0, 500, 999], derived: false, skipped: 0 });
  expect(report.calibration.values).toBeGreaterThan(300);
  const kept = report.explanations.filter((e: { reason?: string }) => e.reason === 'kept float32: --keep-fp32 Conv');
  expect(kept.length).toBe(report.opsAfter['ai.onnx::Conv']);
  const none = JSON.parse(sdc('compile', tinyPath('unet_dynamo_op18'), '--dry-run', '--json', '--precision', 'fp16', '--no-calibrate').stdout);
  expect(none.calibration).toBeUndefined();
});

test('sdc cache list, prune and clear: entries least recently used first, evicted to --bytes, all removed; mistakes are exit 2', () => {
  const cacheDir = path.join(dir, 'cache-cmd');
  const b = new ModelBuilder();
  const x = b.input('x', ['n', 4]);
  b.output(b.op('Add', [x, b.const('w', [4], new Float32Array(4).fill(1))]), ['n', 4]);
  const model = saveModel(b.model, path.join(dir, 'cache-cmd.onnx'), { externalData: 'never' });
  for (const n of [1, 2]) expect(sdc('run', model, '--shape', `x=${n}x4`, '--cache-dir', cacheDir).status).toBe(0);
  const list = sdc('cache', 'list', '--cache-dir', cacheDir);
  expect(list.status).toBe(0);
  expect(list.stdout).toMatch(/x:float32\[1x4\][^\n]*\n[^\n]*x:float32\[2x4\][^\n]*\n2 entries, [\d.]+ KiB in /);
  const entries = JSON.parse(sdc('cache', 'list', '--json', '--cache-dir', cacheDir).stdout);
  expect(entries).toHaveLength(2);
  const prune = sdc('cache', 'prune', '--bytes', String(entries[1].bytes), '--cache-dir', cacheDir);
  expect(prune.stdout).toMatch(/evicted 1 entry/);
  expect(JSON.parse(sdc('cache', 'list', '--json', '--cache-dir', cacheDir).stdout).map((e: { key: string }) => e.key)).toEqual([entries[1].key]);
  expect(sdc('cache', 'clear', '--cache-dir', cacheDir).stdout).toMatch(/removed 1 entry/);
  expect(fs.readdirSync(cacheDir)).toEqual([]);
  for (const [args, message] of [
    [['cache', 'prune', '--bytes', 'lots', '--cache-dir', cacheDir], /^sdc: --bytes 'lots' is not a size/],
    [['cache', 'list', '--cache-dir', path.join(dir, 'cache-cmd-file')], /cache-cmd-file: is not a folder/],
  ] as const) {
    fs.writeFileSync(path.join(dir, 'cache-cmd-file'), '');
    const r = sdc(...args);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(message);
  }
});

describe('WebGPU from the command line', () => {
  const shape = 'sample=1x4x8x8,timestep=1,encoder_hidden_states=1x4x32';

  test('a webgpu compile writes nothing but sdc\'s own lines on stderr (the provider probe\'s native diagnostics stay in its child)', () => {
    const out = path.join(dir, 'quiet.webgpu.onnx');
    const r = sdc('compile', tinyPath('unet_sdpa_op17'), '-o', out, '--target', 'webgpu');
    expect(r.status).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^verified before writing: /m);
  });

  noWebgpuTest('inspect --placement where no adapter starts: one sdc line saying how to get one, exit 2 (a measurement asked for and not made)', () => {
    const out = path.join(dir, 'quiet.webgpu.onnx');
    if (!fs.existsSync(out)) expect(sdc('compile', tinyPath('unet_sdpa_op17'), '-o', out, '--target', 'webgpu').status).toBe(0);
    const r = sdc('inspect', out, '--placement', '--target', 'webgpu', '--shape', shape);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^sdc: \S+quiet\.webgpu\.onnx: placement on webgpu not measured: the webgpu provider cannot start here \(Failed to get a WebGPU adapter[^\n]*\); a GPU with Vulkan drivers, or without one Debian's chromium/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });
});

test('a --shape the model cannot compute with (100 tokens past a 77-position table, an odd latent) is one sdc: line for inspect --placement and bench, naming the node, exit 2', () => {
  const te = path.join(FIXTURES, 'models', 'pipelines', 'tiny-sd15', 'text_encoder', 'model.onnx');
  const runs = [
    sdc('inspect', te, '--placement', '--target', 'cpu', '--shape', 'input_ids=1x100'),
    sdc('bench', te, '--shape', 'input_ids=1x100'),
    sdc('inspect', tinyPath('unet_sdpa_op17'), '--placement', '--target', 'cpu', '--shape', 'sample=1x4x31x32,timestep=1,encoder_hidden_states=1x8x32'),
  ];
  for (const r of runs) {
    expect([r.status, r.stderr.trim().split('\n').length, r.stdout]).toEqual([2, 1, '']);
    expect(r.stderr).toMatch(/^sdc: .*: --shape .* contradicts the model at node '[^']+' \((Add|Concat)\): /);
  }
});

test.each(['abc', '-1'])('--check-tolerance %s is refused in one line, exit 2 (not a check that fails with tolerance NaN)', (tol) => {
  const out = path.join(dir, 'tolerance.onnx');
  const r = sdc('compile', tinyPath('unet_sdpa_op17'), '-o', out, '--check', '1', `--check-tolerance=${tol}`);
  expect([r.status, r.stderr.trim()]).toEqual([2, expect.stringMatching(/^sdc: --check-tolerance takes a relative difference of 0 or more, e\.g\. 1e-3 \(got (NaN|-1)\)$/)]);
  expect(fs.existsSync(out)).toBe(false);
});
