import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { syntheticInputs } from '../../src/runtime/feeds';

export type Feeds = Record<string, ort.Tensor>;
export type Outputs = Record<string, ort.Tensor>;

/**
 * The sessions of fixture models (never written to), one per file and options in each test file: most
 * tests compare an output with the original, and opening a tiny UNet costs ~1 s of onnxruntime's graph
 * optimization, many times the run. Released after the test file.
 */
const fixtureSessions = new Map<string, Promise<ort.InferenceSession>>();
afterAll(async () => {
  const open = [...fixtureSessions.values()];
  fixtureSessions.clear();
  for (const s of open) await (await s).release();
});

async function session(file: string, opts: ort.InferenceSession.SessionOptions): Promise<{ s: ort.InferenceSession; shared: boolean }> {
  const options = { logSeverityLevel: 3, ...opts } as ort.InferenceSession.SessionOptions;
  if (!path.resolve(file).startsWith(FIXTURES + path.sep)) return { s: await ort.InferenceSession.create(file, options), shared: false };
  const key = `${path.resolve(file)}\0${JSON.stringify(options)}`;
  let s = fixtureSessions.get(key);
  if (!s) {
    s = ort.InferenceSession.create(file, options);
    fixtureSessions.set(key, s);
    s.catch(() => fixtureSessions.delete(key));
  }
  return { s: await s, shared: true };
}

export async function runModel(file: string, feeds: Feeds, opts: ort.InferenceSession.SessionOptions = {}): Promise<Outputs> {
  const { s, shared } = await session(file, opts);
  try {
    const wanted = Object.fromEntries(Object.entries(feeds).filter(([k]) => s.inputNames.includes(k)));
    return (await s.run(wanted)) as Outputs;
  } finally {
    if (!shared) await s.release();
  }
}

/** Uniform [-1, 1) float32 data of `dims` from the stream of `seed` (the one input generator, src/runtime/feeds.ts). */
export function tensor(dims: number[], seed = 1): ort.Tensor {
  return syntheticInputs([{ name: 'x', type: 'float32', dims }], { seed }).x;
}

/** Inputs for the diffusers UNets: sample [B,4,H,W], timestep [B] (500, 600, ...), encoder_hidden_states [B,S,D]. */
export function unetFeeds(batch: number, size: number, seq: number, dim: number): Feeds {
  const timestep = Array.from({ length: batch }, (_, i) => 500 + 100 * i);
  return {
    ...syntheticInputs([{ name: 'sample', type: 'float32', dims: [batch, 4, size, size] }, { name: 'timestep', type: 'float32', dims: [batch] }], { seed: 11, timestep }),
    ...syntheticInputs([{ name: 'encoder_hidden_states', type: 'float32', dims: [batch, seq, dim] }], { seed: 23 }),
  };
}

export function bitEqual(a: ort.Tensor, b: ort.Tensor): boolean {
  if (a.type !== b.type || a.dims.join() !== b.dims.join()) return false;
  const x = a.data as ArrayLike<unknown>;
  const y = b.data as ArrayLike<unknown>;
  if (x.length !== y.length) return false;
  for (let i = 0; i < x.length; i++) if (!Object.is(x[i], y[i]) && !(x[i] === y[i])) return false;
  return true;
}

export { relError } from '../../src/runtime/compare';
export { randomFloats } from '../../src/runtime/feeds';

export function tmpDir(prefix = 'sdc-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** What the tests read lives in the repository: real exports, conformance cases (fixtures/README.md). */
export const FIXTURES = path.resolve(__dirname, '..', '..', 'fixtures');
export const TINY = ['unet_sdpa_op17', 'unet_vanilla_op17', 'unet_dynamo_op18'] as const;
export const tinyPath = (name: string) => path.join(FIXTURES, 'models', 'tiny', `${name}.onnx`);
