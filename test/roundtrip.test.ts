import * as fs from 'fs';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { inspect } from '../src/compiler/inspect';
import { readModel } from '../src/onnx/read';
import { writeModel } from '../src/onnx/write';
import { FIXTURES, TINY, bitEqual, runModel, tinyPath, tmpDir, unetFeeds } from './helpers/ort';

const dir = tmpDir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

// the same for ONNX's conformance cases: test/conformance.test.ts (a sample), test/full/conformance.test.ts (all)
describe('read then write changes nothing onnxruntime can see', () => {
  test.each(TINY)('tiny %s: bit-equal outputs, same ops', async (name) => {
    const src = tinyPath(name);
    const out = path.join(dir, `${name}.onnx`);
    const model = readModel(src);
    writeModel(model, out);
    expect(inspect(readModel(out)).ops).toEqual(inspect(readModel(src)).ops);
    // the dynamo export is static: batch 2, 32x32, sequence 16
    const feeds = unetFeeds(2, 32, 16, 32);
    const [a, b] = [await runModel(src, feeds), await runModel(out, feeds)];
    expect(Object.keys(b)).toEqual(Object.keys(a));
    for (const k of Object.keys(a)) expect(bitEqual(a[k], b[k])).toBe(true);
  });

  test('the peer optimizer\'s tiny output (CUDA-only ops) round-trips: same ops, same refusal on the CPU', async () => {
    const src = path.join(FIXTURES, 'models', 'peer', 'tiny_unet_vanilla_op17.ortopt.onnx');
    const out = path.join(dir, 'peer.onnx');
    writeModel(readModel(src), out);
    expect(inspect(readModel(out)).ops).toEqual(inspect(readModel(src)).ops);
    const refusal = async (f: string) => ort.InferenceSession.create(f).then(() => 'loaded', (e: Error) => e.message.replace(/^.*?failed:/, ''));
    const [a, b] = [await refusal(src), await refusal(out)];
    expect(a).toMatch(/NhwcConv/);
    expect(b).toBe(a);
  });
});
