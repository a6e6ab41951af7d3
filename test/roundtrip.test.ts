import * as fs from 'fs';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { inspect } from '../src/compiler/inspect';
import { readModel } from '../src/onnx/read';
import { writeModel } from '../src/onnx/write';
import { conformanceCases, loadDataSet } from './helpers/conformance';
import { FIXTURES, TINY, bitEqual, runModel, tinyPath, tmpDir, unetFeeds } from './helpers/ort';

const dir = tmpDir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

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

  test('every conformance model: same outputs bit for bit wherever the original runs', async () => {
    const cases = conformanceCases();
    expect(cases.length).toBeGreaterThan(900);
    let compared = 0;
    const broken: string[] = [];
    for (const c of cases) {
      const out = path.join(dir, 'conf.onnx');
      writeModel(readModel(c.model), out);
      const [before, after] = [inspect(readModel(c.model)), inspect(readModel(out))];
      if (JSON.stringify(before.ops) !== JSON.stringify(after.ops) || JSON.stringify(before.inputs) !== JSON.stringify(after.inputs)) broken.push(`${c.name}: inspect differs`);
      let s0: ort.InferenceSession;
      try {
        s0 = await ort.InferenceSession.create(c.model, { logSeverityLevel: 4 });
      } catch {
        continue; // the original does not load: nothing to preserve
      }
      const data = loadDataSet(c, s0.inputNames, s0.outputNames);
      let r0: ort.InferenceSession.OnnxValueMapType | null = null;
      try {
        r0 = data ? await s0.run(data.feeds) : null;
      } catch {
        r0 = null;
      }
      await s0.release();
      if (!r0 || !data) continue;
      let s1: ort.InferenceSession;
      try {
        s1 = await ort.InferenceSession.create(out, { logSeverityLevel: 4 });
      } catch (e) {
        broken.push(`${c.name}: rewritten model does not load: ${(e as Error).message.slice(0, 200)}`);
        continue;
      }
      const r1 = await s1.run(data.feeds);
      await s1.release();
      compared++;
      for (const k of Object.keys(r0)) {
        if (!bitEqual(r0[k] as ort.Tensor, r1[k] as ort.Tensor)) broken.push(`${c.name}: output ${k} differs`);
      }
    }
    expect(broken).toEqual([]);
    expect(compared).toBeGreaterThan(800);
  }, 600000);

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
