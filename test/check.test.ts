import * as fs from 'fs';
import * as path from 'path';
import { SdcError } from '../src/ir/errors';
import { gelu } from '../src/rules/gelu';
import { compileChecked } from '../src/verify/check';
import { webgpuUnavailable } from '../src/runtime/session';
import { TINY, tinyPath, tmpDir } from './helpers/ort';

const dir = tmpDir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const CASES = TINY.flatMap((style) => (['cpu', 'webgpu', 'cuda'] as const).map((target) => [style, target] as const));
test.each(CASES)('--check passes the real tiny %s compiled for %s, and says where it ran', async (style, target) => {
  const out = path.join(dir, style, target, 'unet.onnx');
  const r = await compileChecked(tinyPath(style), { output: out, target, check: 2 });
  const dynamo = style === 'unet_dynamo_op18'; // static export: checked at its own dims
  expect(r.check).toMatchObject({ sets: 2, derivedDims: !dynamo, passed: true });
  expect(r.check!.maxRel).toBeLessThan(1e-4);
  expect(r.check!.dims.sample).toEqual(dynamo ? [2, 4, 32, 32] : [1, 4, 8, 8]);
  const why = target === 'webgpu' ? await webgpuUnavailable() : null;
  const webgpu = target === 'webgpu' && !why;
  // without an adapter a webgpu output is checked on the CPU, and the report says why
  expect(r.check!.ranOn).toEqual(target === 'cuda' ? 'cpu (GPU-only ops lowered to CPU ops)' : webgpu ? expect.stringMatching(/^webgpu/) : why ? `cpu (WebGPU here: ${why})` : 'cpu');
  if (target === 'cuda') expect(r.loaded!.by).toMatch(/^structure only: .*NhwcConv.* no CPU kernel/);
  else if (target === 'webgpu') expect(r.loaded!.by).toMatch(webgpu ? /^onnxruntime webgpu$/ : /^structure only: .*no CPU kernel|^onnxruntime cpu$/);
  else expect(r.loaded!.by).toBe('onnxruntime cpu');
  expect(fs.existsSync(out)).toBe(true);
  expect(fs.readdirSync(path.dirname(out))).toEqual(['unet.onnx']); // no staging folder left behind
});

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
