import * as fs from 'fs';
import { CONFORMANCE_SAMPLE, checkConformance, conformanceSample } from './helpers/conformance';
import { tmpDir } from './helpers/ort';

const dir = tmpDir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/**
 * A fixed sample of ONNX's backend cases (CONFORMANCE_SAMPLE), through the same checks
 * test/full/conformance.test.ts runs on all of them: read then write changes nothing onnxruntime can
 * see, and what the original passes still passes after default and after reduce-overhead.
 */
test(`${CONFORMANCE_SAMPLE.length} conformance cases: bit-equal after read then write; what the original passes still passes after default and reduce-overhead`, async () => {
  const r = await checkConformance(conformanceSample(), dir);
  expect(r.roundTripBroken).toEqual([]);
  expect(r.defaultRegressions).toEqual([]);
  expect(r.reduceRegressions).toEqual([]);
  // exact, as in the full run: 3 of the sample are cases onnxruntime fails with the original
  expect(r.originalPasses).toBe(56);
  expect(r.reduceChecked).toBe(56);
  expect(r.roundTripped).toBe(56);
});
