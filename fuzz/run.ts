import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { fixturesDir } from '../fixtures/materialize';
import { Rng, mutant, seeds, tryLoad } from './mutate';

/**
 * `npm run fuzz -- [--seconds N] [--seed S] [--shallow]`: mutate the fixtures' models for N seconds
 * (default 60), load each mutant, and compile what loads (unless --shallow); every input must load or
 * fail with SdcError. What fails otherwise is kept in fuzz/corpus/ (the bytes and the error), which
 * `npm run test:full` replays (test/full/fuzz.test.ts).
 */
function main(): void {
  const arg = (name: string, dflt: number) => {
    const i = process.argv.indexOf(name);
    return i >= 0 ? Number(process.argv[i + 1]) : dflt;
  };
  const seconds = arg('--seconds', 60);
  const seed = arg('--seed', Date.now() % 2 ** 31);
  const deep = !process.argv.includes('--shallow');
  const corpus = path.join(__dirname, '..', '..', 'fuzz', 'corpus');
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'sdc-fuzz-'));
  const fixtures = fixturesDir();
  // conformance models (every op kind), the SD1.5 graphs (loader only: their weights are absent) and the
  // tiny UNets with weights (the passes run on what loads); the big ones are drawn less often
  const small = seeds(fixtures);
  const big = [
    ...['sdpa_op17', 'vanilla_op17', 'dynamo_op18'].map((s) => ({ name: `sd15/${s}`, bytes: fs.readFileSync(path.join(fixtures, 'models', 'sd15', `unet_${s}.graph.onnx`)) })),
    ...['sdpa_op17', 'vanilla_op17', 'dynamo_op18'].map((s) => ({ name: `tiny/${s}`, bytes: fs.readFileSync(path.join(fixtures, 'models', 'tiny', `unet_${s}.onnx`)) })),
  ];
  const rng = new Rng(seed);
  const end = Date.now() + seconds * 1000;
  const counts = { loaded: 0, refused: 0, crashes: 0 };
  console.log(`fuzz: seed ${seed}, ${seconds} s, ${small.length + big.length} seeds, ${deep ? 'load and compile' : 'load only'}`);
  try {
    while (Date.now() < end) {
      const s = rng.int(10) === 0 ? rng.pick(big) : rng.pick(small);
      const bytes = mutant(s.bytes, rng);
      const outcome = tryLoad(bytes, work, deep);
      if (typeof outcome === 'string') {
        counts[outcome]++;
        continue;
      }
      counts.crashes++;
      const id = crypto.createHash('sha256').update(bytes).digest('hex').slice(0, 16);
      fs.mkdirSync(corpus, { recursive: true });
      fs.writeFileSync(path.join(corpus, `${id}.onnx`), bytes);
      fs.writeFileSync(path.join(corpus, `${id}.txt`), `from ${s.name}, seed ${seed}\n${outcome.crash}\n`);
      console.log(`crash (${s.name}): ${outcome.crash} -> fuzz/corpus/${id}.onnx`);
    }
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
  console.log(`fuzz: ${counts.loaded} loaded, ${counts.refused} refused, ${counts.crashes} crashes`);
  process.exitCode = counts.crashes ? 1 : 0;
}

main();
