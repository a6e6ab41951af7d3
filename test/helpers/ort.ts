import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as ort from 'onnxruntime-node';

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

/** Deterministic pseudo-random float32 data in [-1, 1). */
export function randomFloats(n: number, seed = 1): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = (s >>> 0) / 2147483648 - 1;
  }
  return out;
}

export function tensor(dims: number[], seed = 1): ort.Tensor {
  return new ort.Tensor('float32', randomFloats(dims.reduce((a, b) => a * b, 1), seed), dims);
}

/** Inputs for the diffusers UNets: sample [B,4,H,W], timestep [B], encoder_hidden_states [B,S,D]. */
export function unetFeeds(batch: number, size: number, seq: number, dim: number): Feeds {
  return {
    sample: tensor([batch, 4, size, size], 11),
    timestep: new ort.Tensor('float32', Float32Array.from({ length: batch }, (_, i) => 500 + 100 * i), [batch]),
    encoder_hidden_states: tensor([batch, seq, dim], 23),
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

export { relError } from '../../src/runtime/timing';

export function tmpDir(prefix = 'sdc-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** What the tests read lives in the repository: real exports, conformance cases (fixtures/README.md). */
export const FIXTURES = path.resolve(__dirname, '..', '..', 'fixtures');
export const TINY = ['unet_sdpa_op17', 'unet_vanilla_op17', 'unet_dynamo_op18'] as const;
export const tinyPath = (name: string) => path.join(FIXTURES, 'models', 'tiny', `${name}.onnx`);
