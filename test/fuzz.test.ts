import * as fs from 'fs';
import { Rng, mutant, seeds, tryLoad } from '../fuzz/mutate';
import { FIXTURES, tmpDir } from './helpers/ort';

const dir = tmpDir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/**
 * Fixed-seed mutation fuzz of the loader: 2,500 mutants (bit flips, truncations, overwritten runs,
 * protobuf field mutations of real models) each load or fail with SdcError: no other exception, no hang.
 * `npm run fuzz` runs the same for a given time and keeps what it finds in fuzz/corpus/; test:full
 * replays that corpus and mutates a real SD1.5 export (test/full/fuzz.test.ts).
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
