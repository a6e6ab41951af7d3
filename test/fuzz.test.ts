import * as fs from 'fs';
import * as path from 'path';
import { Rng, mutant, seeds, tryLoad } from '../fuzz/mutate';
import { FIXTURES, tmpDir } from './helpers/ort';

const dir = tmpDir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/**
 * Fixed-seed mutation fuzz of the loader: 2,500 mutants (bit flips, truncations, overwritten runs,
 * protobuf field mutations of real models) each load or fail with SdcError: no other exception, no hang.
 * `npm run fuzz` runs the same for a given time and keeps what it finds in fuzz/corpus/.
 */
test('every mutant loads or is refused with an SdcError', () => {
  const all = seeds(FIXTURES);
  const rng = new Rng(20261126);
  const crashes: string[] = [];
  const counts = { loaded: 0, refused: 0 };
  for (let i = 0; i < 2500; i++) {
    const seed = rng.pick(all);
    const bytes = mutant(seed.bytes, rng);
    const outcome = tryLoad(bytes, dir);
    if (typeof outcome === 'string') counts[outcome]++;
    else crashes.push(`${seed.name} #${i}: ${outcome.crash}`);
  }
  expect(crashes).toEqual([]);
  // both outcomes occur: the mutants are neither all harmless nor all garbage
  expect(counts.loaded).toBeGreaterThan(100);
  expect(counts.refused).toBeGreaterThan(100);
});

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
  const corpus = path.join(__dirname, '..', 'fuzz', 'corpus');
  const files = fs.existsSync(corpus) ? fs.readdirSync(corpus).filter((f) => f.endsWith('.onnx')) : [];
  for (const f of files) expect({ f, outcome: tryLoad(fs.readFileSync(path.join(corpus, f)), dir) }).toEqual({ f, outcome: expect.stringMatching(/loaded|refused/) });
});
