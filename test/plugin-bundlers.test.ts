import * as fs from 'fs';
import * as path from 'path';
import { build, expectEmitted, project } from './helpers/bundlers';

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
