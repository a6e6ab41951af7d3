// Starts Vite's dev server on <project> with sdc's plugin, loads main.js's import objects, fetches the
// compiled model it names, then doubles the weights in models/a.onnx's data file (the graph unchanged)
// and loads again, then replaces models/a.onnx (scaled weights, inline) and loads again. Prints one
// JSON line. Usage: node vite-dev.mjs <project> '<plugin options JSON>'
import * as fs from 'fs';
import { createRequire } from 'module';
import * as path from 'path';
import { pathToFileURL } from 'url';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');
const require = createRequire(path.join(ROOT, 'package.json'));
const [project, json] = process.argv.slice(2);
const sdc = require(path.join(ROOT, 'dist', 'plugin', 'index.js'));
const vite = await import(pathToFileURL(path.join(ROOT, 'node_modules', 'vite', 'dist', 'node', 'index.js')).href);
const log = [];
const server = await vite.createServer({ root: project, configFile: false, logLevel: 'silent', server: { port: 0, host: '127.0.0.1' }, plugins: [sdc.vite({ ...JSON.parse(json || '{}'), log: (m) => log.push(m) })] });
await server.listen();
const base = `http://127.0.0.1:${server.httpServer.address().port}`;
const fetchBytes = async (url) => {
  const r = await fetch(base + url);
  return { status: r.status, bytes: r.ok ? Buffer.from(await r.arrayBuffer()).length : 0 };
};
const first = (await server.ssrLoadModule('/main.js')).models;
const firstFetch = await fetchBytes(first.a.url);
const firstData = first.a.externalData.length ? await fetchBytes(first.a.externalData[0].data) : null;
// each change arrives through Vite's watcher, as an editor's save or a new export would
const changed = async (before) => {
  let now = before;
  for (let i = 0; i < 100 && now.a.url === before.a.url; i++) {
    await new Promise((r) => setTimeout(r, 100));
    now = (await server.ssrLoadModule('/main.js')).models;
  }
  return now;
};
const dataFile = path.join(project, 'models', fs.readdirSync(path.join(project, 'models')).find((f) => f.startsWith('a.onnx.')));
const weights = new Float32Array(new Uint8Array(fs.readFileSync(dataFile)).buffer);
fs.writeFileSync(dataFile, Buffer.from(weights.map((w) => 2 * w).buffer));
const retrained = await changed(first);
fs.copyFileSync(path.join(project, 'models', 'a2.onnx'), path.join(project, 'models', 'a.onnx'));
const second = await changed(retrained);
const secondFetch = await fetchBytes(second.a.url);
const missing = await fetchBytes('/@sdc/0000/none.onnx');
await server.close();
process.stdout.write(`${JSON.stringify({ log, first: first.a.url, retrained: retrained.a.url, second: second.a.url, firstFetch, firstData, secondFetch, missing })}\n`);
