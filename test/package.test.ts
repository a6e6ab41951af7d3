import { spawnSync } from 'child_process';
import * as path from 'path';

/** What an app gets from `require('sdc-compiler')` through the package's exports map (the built package). */
test('the package entry exports the library API', () => {
  const script = `const s = require('sdc-compiler'); console.log(JSON.stringify(Object.keys(s).sort()));
    try { require('sdc-compiler/dist/src/compiler/compile'); console.log('deep import allowed'); } catch (e) { console.log(e.code); }`;
  const r = spawnSync(process.execPath, ['-e', script], { cwd: path.resolve(__dirname, '..'), encoding: 'utf8' });
  expect(r.status).toBe(0);
  const [keys, deep] = r.stdout.trim().split('\n');
  expect(JSON.parse(keys)).toEqual(expect.arrayContaining([
    'MODES', 'SdcError', 'TARGETS', 'autotune', 'checkOutput', 'compile', 'compileAssets', 'compileChecked', 'compileStaged',
    'formatInspect', 'inspect', 'load', 'readModel', 'webCaptureOptions', 'writeModel', 'AssetCompiler', 'optionsFor',
  ]));
  expect(deep).toBe('ERR_PACKAGE_PATH_NOT_EXPORTED'); // internals stay internal
});

test('sdc-compiler/plugin exports the build step for each bundler', () => {
  const script = `const p = require('sdc-compiler/plugin'); console.log(JSON.stringify(['vite', 'rollup', 'webpack', 'esbuild'].map((b) => [b, typeof p[b], typeof p.default[b]])));
    const v = p.vite({}); console.log(JSON.stringify([v.name, v.enforce]));`;
  const r = spawnSync(process.execPath, ['-e', script], { cwd: path.resolve(__dirname, '..'), encoding: 'utf8' });
  expect(r.stderr).toBe('');
  const [kinds, vite] = r.stdout.trim().split('\n');
  expect(JSON.parse(kinds)).toEqual(['vite', 'rollup', 'webpack', 'esbuild'].map((b) => [b, 'function', 'function']));
  expect(JSON.parse(vite)).toEqual(['sdc', 'pre']);
});
