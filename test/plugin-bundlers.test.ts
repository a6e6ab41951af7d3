import * as fs from 'fs';
import * as path from 'path';
import { build, expectEmitted, project } from './helpers/bundlers';
import { fileURLToPath } from 'url';
import { FIXTURES } from './helpers/ort';
import { readModel } from '../src/onnx/read';

/**
 * The plugin door in `npm test`: one bundler end to end (esbuild, the quickest), and every way an
 * import can be wrong as a build error naming the model. Vite, Rollup and webpack, rebuilds from the
 * cache and Vite's dev server: test/full/plugin-bundlers.test.ts.
 */
test('esbuild emits each compiled model, specialized by its own rule, with an import object to open it', () => expectEmitted('esbuild'), 120000);

test.each([
  ['a missing model', "import m from './models/nope.onnx?sdc';\nexport const models = { m };\n", /nope\.onnx: model not found \(imported as '\.\/models\/nope\.onnx' from main\.js\)/],
  ['a misspelt option', "import m from './models/a.onnx?sdc&mdoe=default';\nexport const models = { m };\n", /a\.onnx: unknown option 'mdoe' in the import query/],
  ['a bad target', "import m from './models/a.onnx?sdc&target=metal';\nexport const models = { m };\n", /a\.onnx: unknown target 'metal'/],
  ['a corrupt model', "import m from './models/bad.onnx?sdc';\nexport const models = { m };\n", /bad\.onnx: .*(protobuf|not an ONNX model|invalid)/i],
])('%s is a build error naming the model file', async (_name, code, message) => {
  const proj = project(`err-${_name.replace(/\W+/g, '-')}`);
  fs.writeFileSync(path.join(proj, 'models', 'bad.onnx'), Buffer.from('this is not a protobuf'));
  fs.writeFileSync(path.join(proj, 'main.js'), code);
  const err = await build('rollup', proj, path.join(proj, 'out'), {}).catch((e) => e as Error & { stderr: string });
  expect(err).toHaveProperty('stderr');
  expect((err as { stderr: string }).stderr).toMatch(message);
}, 120000);

test('a whole pipeline is one import: its model_index.json, every component compiled with the dims of the images it makes', async () => {
  const proj = project('pipeline');
  fs.cpSync(path.join(FIXTURES, 'models', 'pipelines', 'tiny-sd15'), path.join(proj, 'sd'), { recursive: true });
  fs.writeFileSync(path.join(proj, 'main.js'), "import sd from './sd/model_index.json?sdc&target=webgpu&mode=reduce-overhead&height=32&width=48';\nexport const models = { sd };\n");
  const out = path.join(proj, 'out');
  const r = await build('esbuild', proj, out, {});
  const sd = r.models.sd as unknown as { className: string; height: number; width: number; batch: number; cfg: boolean; components: Record<string, { role: string; url: string; inputs: { name: string; dims: number[] }[]; target: string; mode: string }> };
  expect([sd.className, sd.height, sd.width, sd.batch, sd.cfg]).toEqual(['StableDiffusionPipeline', 32, 48, 1, true]);
  expect(Object.keys(sd.components).sort()).toEqual(['text_encoder', 'unet', 'vae_decoder', 'vae_encoder']);
  const unet = sd.components.unet;
  expect([unet.role, unet.target, unet.mode]).toEqual(['unet', 'webgpu', 'reduce-overhead']);
  expect(unet.inputs.map((i) => [i.name, i.dims])).toEqual([['sample', [2, 4, 16, 24]], ['timestep', []], ['encoder_hidden_states', [2, 77, 32]]]);
  expect(sd.components.vae_decoder.inputs[0].dims).toEqual([1, 4, 16, 24]);
  for (const [name, c] of Object.entries(sd.components)) {
    // esbuild's ES modules resolve the URL against the bundle: file://.../out/assets/<component>.<hash>.onnx
    const file = fileURLToPath(c.url);
    expect([name, path.relative(out, file)]).toEqual([name, expect.stringMatching(new RegExp(`^assets/${name}\\.[0-9a-f]{16}\\.onnx$`))]);
    expect(readModel(file, { allowMissingData: true }).getMetadata('sdc.target')).toBe('webgpu');
  }
  expect(r.stats.compiled).toBe(4);
  // a key of a model import is not a pipeline's, and the reverse
  fs.writeFileSync(path.join(proj, 'main.js'), "import sd from './sd/model_index.json?sdc&shape=sample=1x4x8x8';\nexport const models = { sd };\n");
  const err = await build('esbuild', proj, out, {}).catch((e) => e as { stderr: string });
  expect((err as { stderr: string }).stderr).toMatch(/model_index\.json: unknown option 'shape' in the import query .*known: mode, target, precision, check, height, width, batch, cfg/);
}, 120000);
