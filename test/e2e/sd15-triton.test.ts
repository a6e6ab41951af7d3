import * as fs from 'fs';
import * as path from 'path';
import { compile } from '../../src/compiler/compile';
import { exportTriton } from '../../src/serving/export-triton';
import { Message } from '../../src/serving/model-config';
import { sd15Model } from '../../fixtures/materialize';
import { tmpDir } from '../helpers/ort';
import { expectRepository } from '../helpers/triton';

/** SD1.5 scale (3.4 GB of synthesized weights): the repository's layout, configs and weights agree with the model onnxruntime opens. */
const dir = tmpDir('sdc-e2e-triton-');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

test.each(['default', 'reduce-overhead'] as const)('SD1.5 UNet (sdpa_op17), %s: a Triton repository with the weights beside the model', async (mode) => {
  const out = path.join(dir, mode, 'unet.onnx');
  compile(sd15Model('sdpa_op17'), { output: out, mode, shapes: mode === 'reduce-overhead' ? 'sample=2x4x64x64,timestep=2,encoder_hidden_states=2x77x768' : null });
  const repo = path.join(dir, `${mode}-repo`);
  const r = await exportTriton([out], { output: repo, name: 'unet', kserve: true });
  fs.rmSync(path.dirname(out), { recursive: true }); // the repository has its own copy
  const [m] = await expectRepository(repo, ['unet'], { kserve: true });
  expect(r.models[0].files).toEqual(['model.onnx', 'unet.onnx.data']);
  expect(fs.statSync(path.join(repo, 'unet', '1', 'unet.onnx.data')).size).toBeGreaterThan(3_000_000_000);
  const inputs = m.config.input as Message[];
  if (mode === 'reduce-overhead') {
    expect(m.config.max_batch_size).toBe(0);
    expect(inputs.map((e) => e.dims)).toEqual([[2, 4, 64, 64], [2], [2, 77, 768]]);
    expect(m.config.model_warmup).toBeDefined();
  } else {
    expect(m.config.max_batch_size).toBe(4);
    expect(inputs[1]).toMatchObject({ name: 'timestep', dims: [1], reshape: { shape: [] } });
  }
}, 1800000);
