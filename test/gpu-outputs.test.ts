import * as fs from 'fs';
import * as path from 'path';
import { lowerToCpu } from '../src/verify/lower';
import { TINY, relError, runModel, tinyPath, tmpDir, unetFeeds } from './helpers/ort';
import { compiledTiny } from './helpers/compiled';

const dir = tmpDir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/**
 * The cuda and webgpu outputs cannot run here, but their contrib ops have documented semantics: lowered
 * back to CPU ops by a test oracle, the transformed graphs (NHWC convolutions with re-laid-out weights,
 * sunk transposes, GroupNorm with affine and SiLU folded) must compute the original's numbers.
 */
describe.each(TINY)('tiny %s', (name) => {
  test.each(['cuda', 'webgpu'] as const)('%s output, lowered to CPU ops, equals the original within 1e-4', async (target) => {
    const { file: out } = compiledTiny(name, { target });
    const lowered = path.join(dir, `${name}.${target}.lowered.onnx`);
    const n = lowerToCpu(out, lowered);
    if (target === 'cuda') expect(n).toBeGreaterThanOrEqual(31 + 46); // (Skip)GroupNorms and NhwcConvs
    const feeds = unetFeeds(2, 32, 16, 32);
    expect(relError((await runModel(tinyPath(name), feeds)).out_sample, (await runModel(lowered, feeds)).out_sample)).toBeLessThan(1e-4);
  });
});
