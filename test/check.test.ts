import * as fs from 'fs';
import * as path from 'path';
import { SdcError } from '../src/ir/errors';
import { gelu } from '../src/rules/gelu';
import { compileChecked } from '../src/verify/check';
import { tinyPath, tmpDir } from './helpers/ort';
import { FAST_PAIRS, expectChecked } from './helpers/tiny';

const dir = tmpDir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

// every model on cpu, every target on sdpa; the other pairs: test/full/tiny-cross-product.test.ts
test.each(FAST_PAIRS)('--check passes the real tiny %s compiled for %s, and says where it ran', (style, target) => expectChecked(style, target, dir));

test('--check at given shapes uses them', async () => {
  const r = await compileChecked(tinyPath('unet_sdpa_op17'), { output: path.join(dir, 'shaped.onnx'), check: 1, shapes: 'sample=2x4x16x16,timestep=2,encoder_hidden_states=2x5x32' });
  expect(r.check).toMatchObject({ derivedDims: false, dims: { sample: [2, 4, 16, 16], encoder_hidden_states: [2, 5, 32] }, ranOn: 'cpu', passed: true });
});

test('--check refuses a wrong output (a rule broken on purpose): exit code 3, nothing written', async () => {
  const rewrite = gelu.rewrite;
  // GELU "fused" into a Relu: plausible structure, wrong numbers.
  gelu.rewrite = (m, _f, rw) => {
    rw.replace(m.values.gelu, rw.add({ op: 'Relu', inputs: [m.values.x], outputs: ['broken'] }).outputs[0]);
    return 'broken on purpose';
  };
  const out = path.join(dir, 'broken', 'unet.onnx');
  try {
    const p = compileChecked(tinyPath('unet_sdpa_op17'), { output: out, check: 2 });
    await expect(p).rejects.toThrow(SdcError);
    await expect(p).rejects.toMatchObject({ exitCode: 3, problem: expect.stringMatching(/differs from the original by .* nothing was written/) });
  } finally {
    gelu.rewrite = rewrite;
  }
  expect(fs.existsSync(out)).toBe(false);
  expect(fs.readdirSync(path.dirname(out))).toEqual([]);
});
