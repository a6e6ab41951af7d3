import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { DataType } from '../src/ir/dtype';
import { readModel } from '../src/onnx/read';
import { ModelProto } from '../src/onnx/schema';
import { writeModel } from '../src/onnx/write';
import { tmpDir } from './helpers/ort';

const dir = tmpDir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/* eslint-disable @typescript-eslint/no-explicit-any */
/** A ModelProto using the fields that an IR-8 schema (onnx-proto 8) drops or mangles. */
function richModel(): any {
  const raw = (n: number) => new Uint8Array(Array.from({ length: n }, (_, i) => (i * 37) & 0xff));
  return {
    irVersion: 11,
    opsetImport: [{ domain: '', version: 23 }, { domain: 'local', version: 1 }],
    producerName: 'hand',
    metadataProps: [{ key: 'model.k', value: 'v' }],
    graph: {
      name: 'g',
      metadataProps: [{ key: 'graph.k', value: 'gv' }],
      input: [{ name: 'x', type: { tensorType: { elemType: 1, shape: { dim: [{ dimParam: 'batch', denotation: 'DATA_BATCH' }, { dimValue: 4 }] } } } }],
      output: [{ name: 'y', type: { tensorType: { elemType: 1 } }, metadataProps: [{ key: 'vi.k', value: 'x' }] }],
      node: [
        { input: ['x'], output: ['y'], name: 'f', opType: 'Twice', domain: 'local', overload: 'ov1', metadataProps: [{ key: 'node.k', value: 'nv' }] },
      ],
      initializer: [
        { name: 'h', dims: [3], dataType: DataType.FLOAT16, rawData: raw(6) },
        { name: 'bf', dims: [2], dataType: DataType.BFLOAT16, rawData: raw(4) },
        { name: 'f8', dims: [5], dataType: DataType.FLOAT8E4M3FN, rawData: raw(5) },
        { name: 'i4', dims: [3], dataType: DataType.INT4, rawData: raw(2) },
        { name: 'f4', dims: [4], dataType: DataType.FLOAT4E2M1, rawData: raw(2) },
        { name: 'e8', dims: [1], dataType: DataType.FLOAT8E8M0, rawData: raw(1), metadataProps: [{ key: 'tensor.k', value: 't' }] },
      ],
      sparseInitializer: [
        { values: { name: 'sp', dims: [2], dataType: 1, rawData: raw(8) }, indices: { name: 'sp_i', dims: [2], dataType: 7, rawData: raw(16) }, dims: [10] },
      ],
    },
    functions: [
      {
        name: 'Twice', domain: 'local', overload: 'ov1', input: ['a'], output: ['b'],
        node: [{ input: ['a', 'a'], output: ['b'], opType: 'Add' }],
        opsetImport: [{ domain: '', version: 23 }],
        metadataProps: [{ key: 'fn.k', value: 'fv' }],
      },
    ],
    configuration: [{ name: 'mesh', numDevices: 2, device: ['d0', 'd1'] }],
  };
}

function normalize(m: any): any {
  return ModelProto.toObject(ModelProto.decode(ModelProto.encode(m).finish()), { longs: String, bytes: Array, defaults: false });
}

test('every field of a current model survives read and write', () => {
  const src = path.join(dir, 'rich.onnx');
  fs.writeFileSync(src, ModelProto.encode(richModel()).finish());
  const out = path.join(dir, 'rich.out.onnx');
  writeModel(readModel(src), out);
  const before = normalize(ModelProto.decode(fs.readFileSync(src)));
  const after = normalize(ModelProto.decode(fs.readFileSync(out)));
  expect(after.graph.metadataProps).toEqual(before.graph.metadataProps);
  expect(after.graph.node[0].metadataProps).toEqual(before.graph.node[0].metadataProps);
  expect(after.graph.node[0].overload).toBe('ov1');
  expect(after.graph.output[0].metadataProps).toEqual(before.graph.output[0].metadataProps);
  expect(after.graph.input[0].type.tensorType.shape.dim[0]).toEqual({ dimParam: 'batch', denotation: 'DATA_BATCH' });
  expect(after.graph.sparseInitializer).toEqual(before.graph.sparseInitializer);
  expect(after.functions).toEqual(before.functions);
  expect(after.configuration).toEqual(before.configuration);
  expect(after.metadataProps).toEqual(expect.arrayContaining(before.metadataProps));
  for (const t of before.graph.initializer) {
    const u = after.graph.initializer.find((x: any) => x.name === t.name);
    expect(u).toEqual(t);
  }
});

test('int64 values beyond 2^53 are exact and never Long objects', () => {
  const src = path.join(dir, 'big.onnx');
  const big = '9223372036854775807';
  fs.writeFileSync(src, ModelProto.encode({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 9 }],
    graph: {
      name: 'g',
      input: [{ name: 'x', type: { tensorType: { elemType: 1, shape: { dim: [{ dimValue: 8 }] } } } }],
      output: [{ name: 'y', type: { tensorType: { elemType: 1 } } }],
      node: [{ input: ['x'], output: ['y'], opType: 'Slice', attribute: [
        { name: 'starts', type: 7, ints: [1] }, { name: 'ends', type: 7, ints: [big] }, { name: 'axes', type: 7, ints: [0] }] }],
    },
  }).finish());
  const m = readModel(src);
  const ends = m.graph.nodes[0].attr('ends')!.value as unknown[];
  expect(ends[0]).toBe(BigInt(big));
  expect(m.graph.nodes[0].attr('starts')!.value).toEqual([1]);
  expect(typeof m.irVersion).toBe('number');
  const out = path.join(dir, 'big.out.onnx');
  writeModel(m, out);
  expect(readModel(out).graph.nodes[0].attr('ends')!.value).toEqual([BigInt(big)]);
});

test('typed data fields become the same raw bytes', () => {
  const src = path.join(dir, 'typed.onnx');
  fs.writeFileSync(src, ModelProto.encode({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }],
    graph: {
      name: 'g',
      initializer: [
        { name: 'f', dims: [2], dataType: 1, floatData: [1.5, -2] },
        { name: 'i', dims: [2], dataType: 7, int64Data: [3, -4] },
        { name: 'h', dims: [1], dataType: 10, int32Data: [0x3c00] },
      ],
      output: [{ name: 'f', type: { tensorType: { elemType: 1 } } }],
    },
  }).finish());
  const g = readModel(src).graph;
  expect(Array.from(g.values.get('f')!.initializer!.values() as Float32Array)).toEqual([1.5, -2]);
  expect(Array.from(g.values.get('i')!.initializer!.values() as BigInt64Array)).toEqual([3n, -4n]);
  expect(Array.from(g.values.get('h')!.initializer!.values() as Uint16Array)).toEqual([0x3c00]);
});

test('the static types (src/onnx/onnx-types.d.ts) are what pbjs/pbts generate from onnx.proto', () => {
  // `npm run gen:proto` regenerates them after onnx.proto changes.
  const root = path.resolve(__dirname, '..');
  const r = spawnSync('npm', ['run', '-s', 'proto-types'], { cwd: root, encoding: 'utf8' });
  expect(r.status).toBe(0);
  expect(r.stdout).toBe(fs.readFileSync(path.join(root, 'src', 'onnx', 'onnx-types.d.ts'), 'utf8'));
});
