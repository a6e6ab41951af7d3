import * as fs from 'fs';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { compile } from '../src/compiler/compile';
import { conformanceCases, loadDataSet, runCase } from './helpers/conformance';
import { tmpDir } from './helpers/ort';

const dir = tmpDir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/**
 * reduce-overhead specializes a model to the shapes of its inputs: on every conformance case onnxruntime
 * passes, specializing to the case's own input shapes must still pass.
 */
test('every conformance case still passes after compile --mode reduce-overhead at its own input shapes', async () => {
  let checked = 0;
  const regressions: string[] = [];
  for (const c of conformanceCases()) {
    if ((await runCase(c.model, c)) !== 'pass') continue;
    const s = await ort.InferenceSession.create(c.model, { logSeverityLevel: 4 });
    const data = loadDataSet(c, s.inputNames, s.outputNames);
    await s.release();
    if (!data) continue;
    const shapes = new Map(Object.entries(data.feeds).map(([k, t]) => [k, [...t.dims]]));
    const out = path.join(dir, 'case.onnx');
    let after: string;
    try {
      compile(c.model, { output: out, mode: 'reduce-overhead', shapes });
      after = await runCase(out, c);
    } catch (e) {
      after = `compile failed: ${(e as Error).message.slice(0, 300)}`;
    }
    checked++;
    if (after !== 'pass') regressions.push(`${c.name}: ${after}`);
  }
  expect(regressions).toEqual([]);
  expect(checked).toBe(871);
}, 600000);
