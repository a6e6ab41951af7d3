import * as fs from 'fs';
import * as path from 'path';
import { Model } from '../src/ir/model';
import { readModel } from '../src/onnx/read';
import { encodeReferencingWeights, WriteOptions, writeModel } from '../src/onnx/write';
import { ModelBuilder } from '../src/ir/builder';
import { spawnSync } from 'child_process';
import { startWeightsCopy } from '../src/onnx/weights-copy';
import { SdcError } from '../src/ir/errors';
import { compile } from '../src/compiler/compile';
import { randomFloats, relError, runModel, tensor, tinyPath, tmpDir } from './helpers/ort';

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

  const offsets = (file: string) => new Map(externalTensors(readModel(file)).map((t) => [t.name, (t.data as { offset: number }).offset]));

  it('keeps the tensors after a dropped one where the source has them, zeros in its place, same numbers', async () => {
    // 24 Convs on 3.5 MB of weights, and after the 3rd's an initializer nothing reads: the compile drops it
    const b = new ModelBuilder();
    let x = b.input('x', [1, 64, 6, 6]);
    const unread = randomFloats(64 * 64 * 9, 99);
    for (let i = 0; i < 24; i++) {
      x = b.op('Relu', [b.op('Conv', [x, b.const(`w${i}`, [64, 64, 3, 3], randomFloats(64 * 64 * 9, 100 + i))], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] })]);
      if (i === 2) b.const('unread', [64, 64, 3, 3], unread);
    }
    b.output(x);
    const source = path.join(dir, 'dup.onnx');
    writeModel(b.model, source, { externalData: 'always' });
    const out = path.join(dir, 'dup.cpu.onnx');
    compile(source, { output: out, target: 'cpu' });
    const [before, after] = [offsets(source), offsets(out)];
    expect(after.size).toBe(before.size - 1);
    expect([...after].filter(([name, at]) => before.get(name) !== at)).toEqual([]);
    const data = fs.readFileSync(`${out}.data`);
    expect(data.byteLength).toBe(fs.statSync(`${source}.data`).size);
    const hole = [...before].find(([name]) => !after.has(name))![1];
    expect(data.subarray(hole, hole + unread.byteLength).every((v) => v === 0)).toBe(true);
    const feeds = { x: tensor([1, 64, 6, 6], 5) };
    const [want, got] = [await runModel(source, feeds), await runModel(out, feeds)];
    expect(relError(want.output ?? Object.values(want)[0], got.output ?? Object.values(got)[0])).toBe(0);
  });

  it('packs the tensors when the dropped ones pass a sixteenth of the file, as writing through memory does', () => {
    const size = fs.statSync(`${src}.data`).size;
    // the first external tensors, an eighth of the file, leave it (4-byte inline values in their place)
    const names = new Set<string>();
    let gone = 0;
    for (const t of externalTensors(readModel(src)).sort((p, q) => (p.data as { offset: number }).offset - (q.data as { offset: number }).offset)) {
      if (gone >= size / 8) break;
      names.add(t.name);
      gone += t.byteLength;
    }
    const drop = (m: Model) => {
      for (const v of m.graph.initializers()) if (names.has(v.name)) [v.initializer!.data, v.initializer!.dims] = [{ kind: 'bytes', bytes: new Uint8Array(4) }, [1]];
      return m;
    };
    const fast = written(drop(readModel(src)), path.join(dir, 'a'));
    const slow = written(drop(throughMemory(readModel(src))), path.join(dir, 'b'));
    expect(fast.model.equals(slow.model)).toBe(true);
    expect(fast.data.equals(slow.data)).toBe(true);
    expect(fast.data.byteLength).toBeLessThan(size * 0.9);
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
