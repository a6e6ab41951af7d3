import * as fs from 'fs';
import * as path from 'path';

/**
 * The folders under src/ form layers: a folder imports only from folders below it, so there is no
 * import cycle between folders and each layer can be read (and tested) without the ones above it.
 * The order is the architecture (docs/architecture.md); `index` is the package entry, the top door.
 */
const LAYERS = ['ir', 'onnx', 'ops', 'analysis', 'targets', 'rewrite', 'rules', 'passes', 'compiler', 'runtime', 'verify', 'autotune', 'pipeline', 'serving', 'assets', 'cli', 'index'];
/** Outside src/: support code that may use any layer, and that no layer may use. */
const OUTSIDE = ['bench', 'fixtures', 'fuzz'];

const ROOT = path.resolve(__dirname, '..');

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...sources(p));
    else if (e.name.endsWith('.ts')) out.push(p);
  }
  return out;
}

/** src/<folder>/... → folder; src/index.ts → index; bench/... → bench. */
function folderOf(file: string): string {
  const rel = path.relative(ROOT, file).split(path.sep);
  if (rel[0] !== 'src') return rel[0];
  return rel.length === 2 ? path.basename(rel[1], '.ts') : rel[1];
}

/** Every relative import of every source file, as folder → folder edges with the file that makes them. */
function edges(): { from: string; to: string; file: string }[] {
  const out: { from: string; to: string; file: string }[] = [];
  for (const file of [...sources(path.join(ROOT, 'src')), ...OUTSIDE.flatMap((d) => sources(path.join(ROOT, d)))]) {
    const text = fs.readFileSync(file, 'utf8');
    for (const m of text.matchAll(/(?:from\s+|import\s*\(\s*|require\(\s*)'(\.{1,2}\/[^']*)'/g)) {
      const target = path.resolve(path.dirname(file), m[1]);
      const resolved = [`${target}.ts`, `${target}.d.ts`, path.join(target, 'index.ts')].find((f) => fs.existsSync(f));
      if (!resolved) throw new Error(`${path.relative(ROOT, file)}: cannot resolve '${m[1]}'`);
      const from = folderOf(file);
      const to = folderOf(resolved);
      if (from !== to) out.push({ from, to, file: path.relative(ROOT, file) });
    }
  }
  return out;
}

test('every folder under src/ is a known layer', () => {
  const folders = fs.readdirSync(path.join(ROOT, 'src')).map((f) => f.replace(/\.ts$/, ''));
  expect(folders.filter((f) => !LAYERS.includes(f))).toEqual([]);
});

test('folders import downward only (no import cycle between folders)', () => {
  const upward = edges()
    .filter((e) => !OUTSIDE.includes(e.from))
    .filter((e) => OUTSIDE.includes(e.to) || LAYERS.indexOf(e.to) >= LAYERS.indexOf(e.from))
    .map((e) => `${e.file}: ${e.from} imports ${e.to}`);
  expect(upward).toEqual([]);
});

test('the layering check sees real imports (the passes use the IR)', () => {
  expect(edges().some((e) => e.from === 'passes' && e.to === 'ir')).toBe(true);
});

test('the bundler plugin (plugin/, a door) uses sdc only through the package entry', () => {
  const deep: string[] = [];
  for (const file of sources(path.join(ROOT, 'plugin'))) {
    for (const m of fs.readFileSync(file, 'utf8').matchAll(/from\s+'(\.{1,2}\/[^']*)'/g)) {
      const target = path.resolve(path.dirname(file), m[1]);
      const inside = target.startsWith(path.join(ROOT, 'plugin') + path.sep);
      if (!inside && target !== path.join(ROOT, 'src', 'index')) deep.push(`${path.relative(ROOT, file)}: ${m[1]}`);
    }
  }
  expect(deep).toEqual([]);
});
