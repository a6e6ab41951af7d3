import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { tinyPath } from '../helpers/ort';

/**
 * The package as npm ships it (`npm pack`), unpacked into a fresh app as `npm install` lays it out: the
 * README's library snippet, the CLI through `npx`, a plugin build, and tsc over the client and plugin
 * types with no skipLibCheck, under moduleResolution bundler and node10. The dependencies come from this
 * checkout's node_modules (linked), so the test needs no registry; what it checks is the packed file list,
 * package.json (name, bin, exports, typesVersions) and the shipped types.
 */
const root = path.resolve(__dirname, '..', '..');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
let app: string;
let work: string;

const run = (cmd: string, args: string[], cwd = app) => spawnSync(cmd, args, { cwd, encoding: 'utf8', env: { ...process.env, npm_config_yes: 'false' } });
// es2022: what a bundled app targets (vite's types use private class fields)
const tsc = (...args: string[]) => run(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '--noEmit', '--strict', '--target', 'es2022', '--types', 'node', ...args]);

beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'sdc-pack-'));
  // --ignore-scripts: the suite built dist/ already (test:full), and prepare would build it again
  const packed = run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], root);
  expect(packed.status).toBe(0);
  const tarball = path.join(work, JSON.parse(packed.stdout)[0].filename);
  app = path.join(work, 'app');
  const installed = path.join(app, 'node_modules', pkg.name);
  fs.mkdirSync(installed, { recursive: true });
  expect(run('tar', ['-xzf', tarball, '-C', installed, '--strip-components=1'], work).status).toBe(0);
  // the package's dependencies, and the bundlers and types the app itself would install
  fs.symlinkSync(path.join(root, 'node_modules'), path.join(installed, 'node_modules'));
  for (const dep of ['vite', 'rollup', 'webpack', 'esbuild', '@types', 'onnxruntime-node']) fs.symlinkSync(path.join(root, 'node_modules', dep), path.join(app, 'node_modules', dep));
  // npm links each `bin` entry into node_modules/.bin
  fs.mkdirSync(path.join(app, 'node_modules', '.bin'));
  const shipped = JSON.parse(fs.readFileSync(path.join(installed, 'package.json'), 'utf8'));
  for (const [name, file] of Object.entries(shipped.bin as Record<string, string>)) fs.symlinkSync(path.join('..', pkg.name, file), path.join(app, 'node_modules', '.bin', name));
  fs.copyFileSync(tinyPath('unet_sdpa_op17'), path.join(app, 'unet.onnx'));
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
}, 120000);
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

test('the package name is ours to publish and the command is sdc', () => {
  // `sdc` on the registry is an unrelated placeholder; `sdc-compiler` was free when chosen (npm view: 404)
  expect(pkg.name).toBe('sdc-compiler');
  expect(Object.keys(pkg.bin)).toEqual(['sdc']);
  const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
  expect(readme).toContain(`npm install ${pkg.name}`);
  expect(readme).not.toMatch(/npm (install|i) sdc\b(?!-)/);
});

test('the README\'s library snippet runs in the app', () => {
  fs.writeFileSync(path.join(app, 'snippet.mjs'), `import { compile, compileChecked, SdcError } from '${pkg.name}';
const r = compile('unet.onnx', { output: 'unet.sdc.onnx', mode: 'default' });
const c = await compileChecked('unet.onnx', { output: 'unet.checked.onnx', check: 1 });
console.log(JSON.stringify([r.nodesAfter < r.nodesBefore, c.check.passed, typeof SdcError]));
`);
  const r = run(process.execPath, ['snippet.mjs']);
  expect(r.stderr).toBe('');
  expect(JSON.parse(r.stdout)).toEqual([true, true, 'function']);
}, 120000);

test('the CLI runs through npx as sdc', () => {
  const r = run('npx', ['--no-install', 'sdc', 'compile', 'unet.onnx', '-o', 'cli.onnx', '--quiet']);
  expect(r.stderr.replace(/npm warn .*\n/g, '')).toBe('');
  expect(r.status).toBe(0);
  expect(fs.existsSync(path.join(app, 'cli.onnx'))).toBe(true);
  expect(run('npx', ['--no-install', 'sdc', 'inspect', 'cli.onnx']).stdout).toMatch(/nodes/);
}, 120000);

test('a plugin build (esbuild) in the app compiles an ?sdc&target=cpu import', () => {
  fs.writeFileSync(path.join(app, 'main.js'), "import unet from './unet.onnx?sdc&target=cpu';\nexport default unet;\n");
  fs.writeFileSync(path.join(app, 'build.mjs'), `import * as esbuild from 'esbuild';
import sdc from '${pkg.name}/plugin';
await esbuild.build({ entryPoints: ['main.js'], bundle: true, format: 'esm', outdir: 'dist', plugins: [sdc.esbuild({ log: false })], logLevel: 'silent' });
`);
  const r = run(process.execPath, ['build.mjs']);
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  const files = fs.readdirSync(path.join(app, 'dist'), { recursive: true }) as string[];
  expect(files.some((f) => f.endsWith('.onnx'))).toBe(true);
  expect(fs.readFileSync(path.join(app, 'dist', 'main.js'), 'utf8')).toMatch(/sessionOptions/);
}, 120000);

describe.each(['bundler', 'node10'])('types under moduleResolution %s, without skipLibCheck', (resolution) => {
  const flags = resolution === 'bundler' ? ['--module', 'esnext', '--moduleResolution', 'bundler'] : ['--module', 'commonjs', '--moduleResolution', 'node10', '--esModuleInterop'];

  test('client types: ?sdc, ?sdc&target=cpu, ?sdc&shape=..., ?target=cpu&sdc imports; a wrong use fails', () => {
    const write = (body: string) => fs.writeFileSync(path.join(app, 'client.ts'), `/// <reference types="${pkg.name}/client" />\n${body}\n`);
    write([
      "import unet from './unet.onnx?sdc';",
      "import cpu from './unet.onnx?sdc&target=cpu';",
      "import shaped from './unet.onnx?sdc&mode=reduce-overhead&shape=sample=1x4x64x64,timestep=1,encoder_hidden_states=1x77x768';",
      "import last from './unet.onnx?target=cpu&sdc';",
      "import sd from './sd15/model_index.json?sdc&height=512&width=512';",
      'const url: string = unet.url;',
      'const data: string[] = cpu.externalData.map((d) => d.data);',
      'console.log(url, data, shaped.inputs[0].name, last.sessionOptions, sd.url);',
    ].join('\n'));
    const ok = tsc(...flags, 'client.ts');
    expect(ok.stdout + ok.stderr).toBe('');
    write("import unet from './unet.onnx?sdc&target=cpu';\nconst n: number = unet.url;\nconsole.log(n);");
    expect(tsc(...flags, 'client.ts').stdout).toMatch(/Type 'string' is not assignable to type 'number'/);
  }, 120000);

  test('plugin types fit each bundler\'s own config types', () => {
    // vite's own types do not resolve under node10 (vite says so), so that app has no vite config
    const vite = resolution === 'bundler';
    fs.writeFileSync(path.join(app, 'plugin.ts'), [
      `import sdc, { SdcPluginOptions } from '${pkg.name}/plugin';`,
      ...(vite ? ["import { defineConfig } from 'vite';"] : []),
      "import type { RollupOptions } from 'rollup';",
      "import type { Configuration } from 'webpack';",
      "import type { BuildOptions } from 'esbuild';",
      "const options: SdcPluginOptions = { mode: 'reduce-overhead', models: [{ include: 'unet*.onnx', target: 'webgpu' }] };",
      ...(vite ? ['export const viteConfig = defineConfig({ plugins: [sdc.vite(options)] });'] : []),
      'export const rollupConfig: RollupOptions = { plugins: [sdc.rollup(options)] };',
      'export const webpackConfig: Configuration = { plugins: [sdc.webpack(options)] };',
      'export const esbuildConfig: BuildOptions = { plugins: [sdc.esbuild(options)] };',
    ].join('\n'));
    const ok = tsc(...flags, 'plugin.ts');
    expect(ok.stdout + ok.stderr).toBe('');
  }, 120000);
});
