import * as fs from 'fs';
import { checkConformance, conformanceCases } from '../helpers/conformance';
import { tmpDir } from '../helpers/ort';

const dir = tmpDir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/**
 * ONNX's own backend cases, every one, in one pass (each original opened and run once): read then write
 * changes nothing onnxruntime can see, and whatever onnxruntime gets right with the original it still
 * gets right after compile --mode default and after --mode reduce-overhead at the case's own input
 * shapes. `npm test` runs a fixed sample of the same (test/conformance.test.ts).
 */
test('every conformance case: bit-equal after read then write; what the original passes still passes after default and reduce-overhead', async () => {
  const cases = conformanceCases();
  expect(cases.length).toBeGreaterThan(900);
  const r = await checkConformance(cases, dir);
  console.log(`conformance: ${r.originalPasses} cases onnxruntime passes with the original; ${r.defaultRegressions.length} regress after default, ${r.reduceRegressions.length} after reduce-overhead; ${r.roundTripped} round-tripped`);
  expect(r.roundTripBroken).toEqual([]);
  expect(r.defaultRegressions).toEqual([]);
  expect(r.reduceRegressions).toEqual([]);
  // exact: a case that stops passing with the original (a harness or reader change) must be looked at
  expect(r.originalPasses).toBe(871);
  expect(r.reduceChecked).toBe(871);
  expect(r.roundTripped).toBeGreaterThan(800);
}, 900000);
