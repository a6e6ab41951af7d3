import * as fs from 'fs';
import * as path from 'path';
import { build, dir, expectEmitted, project, RULES, run, writeModel } from '../helpers/bundlers';

/**
 * The plugin in Vite, Rollup and webpack (esbuild and the import errors: test/plugin-bundlers.test.ts),
 * rebuilds from the plugin's cache, one compile for identical imports, and Vite's dev server.
 */
describe.each(['vite', 'rollup', 'webpack'])('%s', (bundler) => {
  test('emits each compiled model, specialized by its own rule, with an import object to open it', () => expectEmitted(bundler), 120000);
});

test('a second build compiles nothing; a changed model recompiles exactly that model, leaving one data file', async () => {
  const proj = project('rebuild');
  const out = path.join(dir, 'rebuild-out');
  expect((await build('vite', proj, out)).stats).toMatchObject({ compiled: 2, fromCache: 0 });
  const second = await build('vite', proj, out);
  expect(second.stats).toMatchObject({ compiled: 0, fromCache: 2 });
  expect(second.log.some((l) => /2 models: 0 compiled, 2 from cache/.test(l))).toBe(true);

  writeModel(path.join(proj, 'models', 'a.onnx'), true, 2);
  const third = await build('vite', proj, out);
  expect(third.stats).toMatchObject({ compiled: 1, fromCache: 1 });
  expect(third.stats.models.find((m) => m.compiled)!.source).toBe(path.join(proj, 'models', 'a.onnx'));
  expect(fs.readdirSync(path.join(out, 'assets')).filter((f) => f.endsWith('.data'))).toHaveLength(1);
}, 180000);

test('identical imports in one build compile once', async () => {
  const proj = project('twice');
  fs.writeFileSync(
    path.join(proj, 'main.js'),
    "import a from './models/a.onnx?sdc';\nimport a2 from './models/a.onnx?sdc&mode=reduce-overhead';\nexport const models = { a, a2 };\n",
  );
  const r = await build('rollup', proj, path.join(dir, 'twice-out'));
  expect(r.stats.compiled).toBe(1);
  expect(r.models.a.url).toBe(r.models.a2.url);
}, 120000);

test('Vite dev server: serves the compiled model from the cache, and recompiles when the .onnx or its weights change', async () => {
  const proj = project('dev');
  writeModel(path.join(proj, 'models', 'a2.onnx'), false, 3);
  const { stdout } = await run(process.execPath, [path.join(__dirname, '..', 'helpers', 'vite-dev.mjs'), proj, JSON.stringify({ cacheDir: path.join(proj, '.sdc-cache'), ...RULES })], { cwd: proj, maxBuffer: 1 << 24 });
  const r = JSON.parse(stdout.trim().split('\n').pop()!);
  expect(r.first).toMatch(/^\/@sdc\/[0-9a-f]{16}\/a\.[0-9a-f]{16}\.onnx$/);
  expect(r.firstFetch.status).toBe(200);
  expect(r.firstFetch.bytes).toBeGreaterThan(0);
  expect(r.firstData).toEqual({ status: 200, bytes: 64 * 64 * 4 });
  expect(r.retrained).toMatch(/^\/@sdc\/[0-9a-f]{16}\/a\.[0-9a-f]{16}\.onnx$/);
  expect(r.retrained).not.toBe(r.first);
  expect(r.second).not.toBe(r.retrained);
  expect(r.secondFetch.status).toBe(200);
  expect(r.secondFetch.bytes).toBeGreaterThan(64 * 64 * 4); // the new model holds its weights inline
  expect(r.missing.status).toBe(404);
  expect(r.log.filter((l: string) => /a\.onnx .* compiled/.test(l))).toHaveLength(3);
}, 120000);
