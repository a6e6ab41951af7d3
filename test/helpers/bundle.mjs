// Builds <project>/main.js with one bundler and sdc's plugin (dist/plugin), then loads the output and
// prints one JSON line: the plugin's build stats, its log, and what the bundle's module exports.
// Usage: node bundle.mjs <vite|rollup|webpack|esbuild> <project> <outDir> '<plugin options JSON>'
// (a separate process: unplugin and Vite are ES modules, which jest's module system does not load).
import { createRequire } from 'module';
import * as path from 'path';
import { pathToFileURL } from 'url';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');
const require = createRequire(path.join(ROOT, 'package.json'));
const [bundler, project, outDir, json] = process.argv.slice(2);
const log = [];
let stats = null;
const sdc = require(path.join(ROOT, 'dist', 'plugin', 'index.js'));
const options = { ...JSON.parse(json || '{}'), log: (m) => log.push(m), onBuildEnd: (s) => (stats = s) };
const entry = path.join(project, 'main.js');
let outFile;

if (bundler === 'rollup') {
  const { rollup } = require('rollup');
  const bundle = await rollup({ input: entry, plugins: [sdc.rollup(options)] });
  await bundle.write({ dir: outDir, format: 'es', entryFileNames: 'main.mjs' });
  await bundle.close();
  outFile = path.join(outDir, 'main.mjs');
} else if (bundler === 'vite') {
  const vite = await import(pathToFileURL(path.join(ROOT, 'node_modules', 'vite', 'dist', 'node', 'index.js')).href);
  await vite.build({
    root: project,
    configFile: false,
    logLevel: 'silent',
    plugins: [sdc.vite(options)],
    build: { outDir, emptyOutDir: true, target: 'esnext', rollupOptions: { input: entry, preserveEntrySignatures: 'exports-only', output: { entryFileNames: 'main.mjs', format: 'es' } } },
  });
  outFile = path.join(outDir, 'main.mjs');
} else if (bundler === 'webpack') {
  const webpack = require('webpack');
  const stats = await new Promise((resolve, reject) =>
    webpack({
      mode: 'production',
      target: 'node',
      context: project,
      entry,
      output: { path: outDir, filename: 'main.cjs', library: { type: 'commonjs2' }, publicPath: '' },
      plugins: [sdc.webpack(options)],
    }).run((err, s) => (err ? reject(err) : resolve(s))),
  );
  if (stats.hasErrors()) throw new Error(stats.toString({ all: false, errors: true }));
  outFile = path.join(outDir, 'main.cjs');
} else if (bundler === 'esbuild') {
  const esbuild = require('esbuild');
  await esbuild.build({ entryPoints: [entry], bundle: true, format: 'esm', platform: 'node', outdir: outDir, outExtension: { '.js': '.mjs' }, plugins: [sdc.esbuild(options)], logLevel: 'silent' });
  outFile = path.join(outDir, 'main.mjs');
} else {
  throw new Error(`unknown bundler ${bundler}`);
}

const mod = await import(pathToFileURL(outFile).href);
const exports = mod.default && !mod.models ? mod.default : mod;
process.stdout.write(`${JSON.stringify({ stats, log, models: exports.models })}\n`);
