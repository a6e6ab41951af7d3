import * as fs from 'fs';
import * as path from 'path';
import { Rng, mutant, tryLoad } from '../../fuzz/mutate';
import { FIXTURES, tmpDir } from '../helpers/ort';

const dir = tmpDir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** The loader fuzz on a real export's graph, and the replay of earlier finds (fixed-seed mutants of the fixtures: test/fuzz.test.ts). */
test('field mutations of a real export (the SD1.5 sdpa graph) load or are refused', () => {
  const real = fs.readFileSync(path.join(FIXTURES, 'models', 'sd15', 'unet_sdpa_op17.graph.onnx'));
  const rng = new Rng(7);
  const crashes: string[] = [];
  for (let i = 0; i < 150; i++) {
    const outcome = tryLoad(mutant(real, rng), dir);
    if (typeof outcome !== 'string') crashes.push(`#${i}: ${outcome.crash}`);
  }
  expect(crashes).toEqual([]);
}, 120000);

test('the corpus of earlier finds still loads or is refused', () => {
  const corpus = path.join(__dirname, '..', '..', 'fuzz', 'corpus');
  const files = fs.readdirSync(corpus).filter((f) => f.endsWith('.onnx'));
  expect(files.length).toBeGreaterThan(0);
  for (const f of files) expect({ f, outcome: tryLoad(fs.readFileSync(path.join(corpus, f)), dir) }).toEqual({ f, outcome: expect.stringMatching(/loaded|refused/) });
});
