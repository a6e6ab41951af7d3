import { spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { readModel } from '../../src/onnx/read';
import { relError, runModel, tinyPath, tmpDir, unetFeeds } from '../helpers/ort';

/*
 * Four processes compile one model to one new -o with different options at once (issue 23): whichever
 * commits last, the output opens beside its own weights and computes the model, and no weights file
 * is left that nothing reads.
 */
const dir = tmpDir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const SDC = path.resolve(__dirname, '..', '..', 'bin', 'sdc');

test('four concurrent compiles to one new output leave one consistent pair and no orphaned weights', async () => {
  const out = path.join(dir, 'out', 'unet.onnx');
  const variants = [[], ['--passes', 'none'], ['--precision', 'fp16'], ['--mode', 'reduce-overhead', '--shape', 'sample=1x4x32x32,timestep=1,encoder_hidden_states=1x16x32']];
  const codes = await Promise.all(variants.map((v) => new Promise<number>((resolve) => {
    const p = spawn(SDC, ['compile', tinyPath('unet_sdpa_op17'), '-o', out, '--external-data', 'always', '-q', ...v], { stdio: 'ignore' });
    p.on('exit', (code) => resolve(code ?? -1));
  })));
  expect(codes).toEqual([0, 0, 0, 0]);
  const data = readModel(out).externalFiles();
  expect(fs.readdirSync(path.dirname(out)).sort()).toEqual(['unet.onnx', ...data.map((f) => path.basename(f))].sort());
  const feeds = unetFeeds(1, 32, 16, 32);
  const want = (await runModel(tinyPath('unet_sdpa_op17'), feeds)).out_sample;
  expect(relError(want, (await runModel(out, feeds)).out_sample)).toBeLessThan(5e-2);
}, 300_000);
