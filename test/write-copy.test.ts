import * as fs from 'fs';
import * as path from 'path';
import { Model } from '../src/ir/model';
import { readModel } from '../src/onnx/read';
import { encodeReferencingWeights, WriteOptions, writeModel } from '../src/onnx/write';
import { ModelBuilder } from '../src/ir/builder';
import { spawnSync } from 'child_process';
import { startWeightsCopy } from '../src/onnx/weights-copy';
import { SdcError } from '../src/ir/errors';
import { randomFloats, tinyPath, tmpDir } from './helpers/ort';

/**
 * The writer starts a data file from a kernel-side copy of the source weights when most tensors keep
 * their place there, and writes the rest over it. Its output must be byte for byte what writing every
 * tensor through memory gives.
 */
const externalTensors = (m: Model) => [...m.graph.allGraphs()].flatMap((g) => g.initializers().map((v) => v.initializer!)).filter((t) => t.data.kind === 'external');

/** The same model with every external tensor read through memory (the writer's copy path cannot apply). */
function throughMemory(m: Model): Model {
  for (const t of externalTensors(m)) {
    const bytes = t.bytes();
    t.data = { kind: 'lazy', length: bytes.byteLength, produce: () => bytes, fromExternal: true };
  }
  return m;
}

/** Write the model into its own folder as model.onnx and return the model and data files' bytes. */
function written(m: Model, dir: string, opts: WriteOptions = {}): { model: Buffer; data: Buffer; mode: number } {
  fs.mkdirSync(dir);
  const r = writeModel(m, path.join(dir, 'model.onnx'), opts);
  expect(r.dataFile).toBe(path.join(dir, 'model.onnx.data'));
  return { model: fs.readFileSync(r.modelFile), data: fs.readFileSync(r.dataFile!), mode: fs.statSync(r.dataFile!).mode };
}

describe('writing weights that stay in place in their source', () => {
  let dir: string;
  let src: string;
  beforeEach(() => {
    dir = tmpDir('sdc-write-copy-');
    src = path.join(dir, 'src.onnx');
    writeModel(readModel(tinyPath('unet_sdpa_op17')), src, { externalData: 'always' });
    expect(externalTensors(readModel(src)).length).toBeGreaterThan(10);
  });
  afterEach(() => {
    fs.chmodSync(`${src}.data`, 0o644);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('gives the same bytes as writing through memory when nothing changed (one whole-file copy)', () => {
    const fast = written(readModel(src), path.join(dir, 'a'));
    const slow = written(throughMemory(readModel(src)), path.join(dir, 'b'));
    expect(fast.model.equals(slow.model)).toBe(true);
    expect(fast.data.equals(slow.data)).toBe(true);
    expect(fast.data.equals(fs.readFileSync(`${src}.data`))).toBe(true);
  });

  it('gives the same bytes when some tensors are rewritten, moved or dropped', () => {
    const edit = (m: Model) => {
      const ts = [...m.graph.initializers()].map((v) => v.initializer!).filter((t) => t.fromExternal).sort((a, b) => b.byteLength - a.byteLength);
      // a rewritten weight of the same size (as NhwcConv's OHWI layout): stays in place, new bytes
      const changed = new Uint8Array(ts[0].bytes()).reverse();
      ts[0].data = { kind: 'bytes', bytes: changed };
      // the last initializer's weights dropped: the file ends earlier than the source
      const g = m.graph;
      const last = g.initializers().filter((v) => v.initializer!.fromExternal).pop()!;
      last.initializer!.data = { kind: 'bytes', bytes: new Uint8Array(4) };
      last.initializer!.dims = [1];
      return m;
    };
    const fast = written(edit(readModel(src)), path.join(dir, 'a'));
    const slow = written(edit(throughMemory(readModel(src))), path.join(dir, 'b'));
    expect(fast.model.equals(slow.model)).toBe(true);
    expect(fast.data.equals(slow.data)).toBe(true);
    expect(fast.data.byteLength).toBeLessThan(fs.statSync(`${src}.data`).size);
  });

  it('gives the output a new file\'s permissions, not a read-only source\'s', () => {
    fs.chmodSync(`${src}.data`, 0o444);
    const fast = written(readModel(src), path.join(dir, 'a'));
    const slow = written(throughMemory(readModel(src)), path.join(dir, 'b'));
    expect(fast.mode).toBe(slow.mode);
    expect(fast.mode & 0o200).toBe(0o200);
  });

  it('refuses a source that ends before its tensors, writing nothing', () => {
    const m = readModel(src);
    fs.truncateSync(`${src}.data`, fs.statSync(`${src}.data`).size - 100);
    const out = path.join(dir, 'out.onnx');
    expect(() => writeModel(m, out)).toThrow(SdcError);
    expect(fs.readdirSync(dir).filter((n) => n.startsWith('out.onnx'))).toEqual([]);
  });

  it('starts from a copy made ahead on another thread when that is its base file, and discards one of another file', () => {
    const ahead = (file: string) => {
      const folder = fs.mkdtempSync(path.join(dir, 'ahead-'));
      return { folder, copy: startWeightsCopy(file, folder) };
    };
    const want = written(throughMemory(readModel(src)), path.join(dir, 'slow'));
    const used = ahead(`${src}.data`);
    const a = written(readModel(src), path.join(dir, 'a'), { startFrom: used.copy });
    expect(a.model.equals(want.model)).toBe(true);
    expect(a.data.equals(want.data)).toBe(true);
    expect(a.mode).toBe(want.mode);
    expect(fs.readdirSync(used.folder)).toEqual([]); // taken: renamed into the output

    const other = path.join(dir, 'other.bin');
    fs.writeFileSync(other, Buffer.alloc(1 << 16, 7));
    const unused = ahead(other);
    const b = written(readModel(src), path.join(dir, 'b'), { startFrom: unused.copy });
    expect(b.data.equals(want.data)).toBe(true);
    // a discarded copy still running is removed by its thread when it ends
    const until = Date.now() + 10_000;
    while (fs.readdirSync(unused.folder).length && Date.now() < until) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
    expect(fs.readdirSync(used.folder).concat(fs.readdirSync(unused.folder))).toEqual([]);
  });

  it('a copy ahead that fails fails the write with its error, writing nothing', () => {
    const folder = fs.mkdtempSync(path.join(dir, 'ahead-'));
    const copy = startWeightsCopy(`${src}.data`, path.join(folder, 'missing-subfolder'));
    const out = path.join(dir, 'out.onnx');
    expect(() => writeModel(readModel(src), out, { startFrom: copy })).toThrow(/ENOENT/);
    expect(fs.readdirSync(dir).filter((n) => n.startsWith('out.onnx'))).toEqual([]);
  });
});

test('a model with a weights file per tensor compiles under a low descriptor limit (the writer keeps few files open)', () => {
  const dir = tmpDir('sdc-many-files-');
  try {
    const b = new ModelBuilder();
    let x = b.input('x', [1024]);
    for (let i = 0; i < 150; i++) x = b.op('Add', [x, b.const(`w${i}`, [1024], randomFloats(1024, i + 1))]);
    b.output(x, [1024]);
    for (const v of b.model.graph.initializers()) {
      const file = path.join(dir, `${v.name}.bin`);
      fs.writeFileSync(file, v.initializer!.bytes());
      v.initializer!.data = { kind: 'external', file, offset: 0, length: 4096 };
    }
    const src = path.join(dir, 'many.onnx');
    fs.writeFileSync(src, encodeReferencingWeights(b.model, dir));
    const sdc = path.resolve(__dirname, '..', 'bin', 'sdc');
    // fp16: every weight is converted when written, read through the writer's open files
    const r = spawnSync('bash', ['-c', `ulimit -n 100 && "${sdc}" compile many.onnx -o out.onnx --precision fp16 --no-calibrate`], { cwd: dir, encoding: 'utf8', timeout: 120_000 });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(readModel(path.join(dir, 'out.onnx')).graph.initializers().length).toBe(150);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
