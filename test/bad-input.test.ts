import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { compile } from '../src/compiler/compile';
import { SdcError } from '../src/ir/errors';
import { readModel } from '../src/onnx/read';
import { ModelProto } from '../src/onnx/schema';
import { ModelBuilder } from '../src/ir/builder';
import { tinyPath, tmpDir } from './helpers/ort';
import { saveModel } from '../src/onnx/write';

/* eslint-disable @typescript-eslint/no-explicit-any */
const dir = tmpDir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const SDC = path.resolve(__dirname, '..', 'bin', 'sdc');

/** A small model whose one weight lives in an external file, in its own folder. */
function externalModel(name: string): string {
  const sub = path.join(dir, name);
  fs.mkdirSync(sub, { recursive: true });
  const b = new ModelBuilder();
  const x = b.input('x', [4]);
  const w = b.const('w', [4], [1, 2, 3, 4]);
  b.output(b.op('Add', [x, w]), [4]);
  return saveModel(b.model, path.join(sub, 'model.onnx'), { externalData: 'always', sizeThreshold: 0 });
}

/** Rewrite the ModelProto of `file` in place with `edit` (to plant a fault). */
function tamper(file: string, edit: (m: any) => void): string {
  const m = ModelProto.decode(fs.readFileSync(file)) as any;
  edit(m);
  fs.writeFileSync(file, ModelProto.encode(m).finish());
  return file;
}

function setExternal(m: any, key: string, value: string) {
  const e = m.graph.initializer[0].externalData.find((x: any) => x.key === key);
  if (e) e.value = value;
  else m.graph.initializer[0].externalData.push({ key, value });
}

const faults: [string, () => string, RegExp][] = [
  ['not a protobuf', () => { const f = path.join(dir, 'text.onnx'); fs.writeFileSync(f, 'this is a README, not a model\n'.repeat(20)); return f; }, /not a valid ONNX protobuf|not an ONNX model/],
  ['truncated', () => { const f = path.join(dir, 'cut.onnx'); const b = fs.readFileSync(tinyPath('unet_sdpa_op17')); fs.writeFileSync(f, b.subarray(0, b.length >> 1)); return f; }, /truncated/],
  ['empty file', () => { const f = path.join(dir, 'empty.onnx'); fs.writeFileSync(f, ''); return f; }, /empty/],
  ['unknown IR version', () => tamper(externalModel('ir'), (m) => { m.irVersion = 99; }), /IR version 99/],
  ['missing external file', () => { const f = externalModel('missing'); fs.rmSync(`${f}.data`); return f; }, /external data file 'model\.onnx\.data' is missing/],
  ['absolute external location', () => tamper(externalModel('abs'), (m) => setExternal(m, 'location', '/etc/passwd')), /is absolute/],
  ['escaping external location', () => tamper(externalModel('esc'), (m) => setExternal(m, 'location', '../abs/model.onnx.data')), /escapes the model's folder/],
  ['offset past the end', () => tamper(externalModel('off'), (m) => setExternal(m, 'offset', '4096')), /runs past the end/],
  ['length past the end', () => tamper(externalModel('len'), (m) => setExternal(m, 'length', '1000000')), /runs past the end/],
  ['duplicate value names', () => tamper(externalModel('dup'), (m) => { m.graph.node.push({ ...m.graph.node[0], name: 'again' }); }), /duplicate value name/],
  ['opset not imported', () => tamper(externalModel('opset'), (m) => { m.graph.node[0].domain = 'com.example'; }), /domain 'com.example', which the model does not import/],
  ['dangling input', () => tamper(externalModel('dangle'), (m) => { m.graph.node[0].input[0] = 'nowhere'; }), /reads 'nowhere'/],
];

describe.each(faults)('%s', (_label, make, message) => {
  test('compile() throws an SdcError naming the file and writes nothing', () => {
    const file = make();
    const out = path.join(dir, `out-${path.basename(path.dirname(file))}-${path.basename(file)}`);
    let err: unknown;
    try {
      compile(file, { output: out, passes: [] });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SdcError);
    expect((err as SdcError).file).toBe(file);
    expect((err as Error).message).toMatch(message);
    expect(fs.existsSync(out)).toBe(false);
    expect(fs.readdirSync(path.dirname(out)).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });

  test('the CLI exits 2 with the message', () => {
    const file = make();
    const out = path.join(dir, `cli-${path.basename(path.dirname(file))}.onnx`);
    const r = spawnSync(SDC, ['compile', file, '-o', out, '--passes', 'none'], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(file);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).not.toMatch(/at .*\.js:\d+/); // a message, not a stack trace
    expect(fs.existsSync(out)).toBe(false);
  });
});

test('an external tensor is not read when the model is opened', () => {
  const file = externalModel('lazy');
  const spy = jest.spyOn(fs, 'readSync');
  const m = readModel(file);
  expect(spy).not.toHaveBeenCalled();
  const w = m.graph.values.get('w')!.initializer!;
  expect(w.data.kind).toBe('external');
  expect(Array.from(w.values() as Float32Array)).toEqual([1, 2, 3, 4]);
  spy.mockRestore();
});

test('refuses to write over the input or its weights', () => {
  const file = externalModel('clobber');
  const folder = path.dirname(file);
  expect(() => compile(file, { output: file, passes: [] })).toThrow(/over the input/);
  // weights in b.onnx.data: an output named b.onnx would put its own data file on top of them
  fs.renameSync(`${file}.data`, path.join(folder, 'b.onnx.data'));
  tamper(file, (m) => setExternal(m, 'location', 'b.onnx.data'));
  const weights = fs.readFileSync(path.join(folder, 'b.onnx.data'));
  expect(() => compile(file, { output: path.join(folder, 'b.onnx'), passes: [], externalData: 'always' })).toThrow(/refusing to overwrite/);
  expect(fs.readFileSync(path.join(folder, 'b.onnx.data'))).toEqual(weights);
  expect(fs.existsSync(path.join(folder, 'b.onnx'))).toBe(false);
});

test('a model whose weights are all small leaves no data file behind', () => {
  const file = externalModel('small');
  const out = path.join(path.dirname(file), 'small-out.onnx');
  compile(file, { output: out, passes: [] });
  expect(fs.readdirSync(path.dirname(file)).sort()).toEqual(['model.onnx', 'model.onnx.data', 'small-out.onnx']);
});
