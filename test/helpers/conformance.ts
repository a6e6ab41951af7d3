import * as fs from 'fs';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { readModel } from '../../src/onnx/read';
import { ORT_TYPE } from '../../src/ir/dtype';
import { readTensorFile } from '../../src/onnx/read';
import { FIXTURES } from './ort';

export interface Case {
  name: string;
  dir: string;
  model: string;
}

export function conformanceCases(): Case[] {
  const root = path.join(FIXTURES, 'conformance');
  const out: Case[] = [];
  for (const suite of fs.readdirSync(root).sort()) {
    const sdir = path.join(root, suite);
    if (!fs.statSync(sdir).isDirectory()) continue;
    for (const c of fs.readdirSync(sdir).sort()) {
      const model = path.join(sdir, c, 'model.onnx');
      if (fs.existsSync(model)) out.push({ name: `${suite}/${c}`, dir: path.join(sdir, c), model });
    }
  }
  return out;
}

/**
 * The first data set of a case as onnxruntime tensors, or null when an input is not a plain tensor
 * (sequences, optionals, unsupported dtypes): such cases are outside what the harness can feed.
 */
export function loadDataSet(c: Case, inputNames: string[], outputNames: string[]): { feeds: Record<string, ort.Tensor>; expected: Record<string, ort.Tensor> } | null {
  const ds = path.join(c.dir, 'test_data_set_0');
  if (!fs.existsSync(ds)) return null;
  const load = (prefix: string, names: string[]) => {
    const out: Record<string, ort.Tensor> = {};
    for (let i = 0; i < names.length; i++) {
      const f = path.join(ds, `${prefix}_${i}.pb`);
      if (!fs.existsSync(f)) return null;
      let t;
      try {
        t = readTensorFile(f);
      } catch (e) {
        // a sequence or optional input is outside what the harness feeds; a plain tensor sdc's reader
        // cannot read is a bug in the reader, and fails the test
        if (tensorInputs(c).has(names[i]) && prefix === 'input') throw new Error(`${c.name}: sdc cannot read ${f}: ${(e as Error).message}`);
        return null;
      }
      const type = ORT_TYPE[t.dtype];
      if (!type || (t.data.kind === 'bytes' && t.byteLength === 0 && t.size !== 0)) return null;
      if (t.data.kind === 'strings') out[names[i]] = new ort.Tensor('string', t.data.strings.map((s) => Buffer.from(s).toString('utf8')), t.dims);
      else {
        const v = t.values();
        out[names[i]] = new ort.Tensor(type as 'float32', type === 'bool' ? new Uint8Array(v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength)) as never : v.slice() as never, t.dims);
      }
    }
    return out;
  };
  const feeds = load('input', inputNames);
  const expected = load('output', outputNames);
  return feeds && expected ? { feeds, expected } : null;
}

/** Names of the case model's graph inputs that are plain tensors. */
function tensorInputs(c: Case): Set<string> {
  return new Set(readModel(c.model).graph.inputs.filter((v) => v.type?.kind === 'tensor').map((v) => v.name));
}

function closeTo(a: ort.Tensor, b: ort.Tensor, rtol = 1e-3, atol = 1e-3): boolean {
  if (a.dims.join() !== b.dims.join()) return false;
  const x = a.data as ArrayLike<number | bigint | string | boolean>;
  const y = b.data as ArrayLike<number | bigint | string | boolean>;
  if (x.length !== y.length) return false;
  for (let i = 0; i < x.length; i++) {
    const p = x[i];
    const q = y[i];
    if (typeof p === 'number' && typeof q === 'number') {
      if (Number.isNaN(p) && Number.isNaN(q)) continue;
      if (p === q) continue;
      if (!(Math.abs(p - q) <= atol + rtol * Math.abs(q))) return false;
    } else if (p !== q) return false;
  }
  return true;
}

/** Run a model on a case's data set: 'pass', 'fail' (wrong numbers), or 'error' (onnxruntime refused). */
export async function runCase(model: string | Uint8Array, c: Case): Promise<'pass' | 'fail' | 'error' | 'unfeedable'> {
  let s: ort.InferenceSession;
  try {
    s = await ort.InferenceSession.create(model as string, { logSeverityLevel: 4 });
  } catch {
    return 'error';
  }
  try {
    const data = loadDataSet(c, s.inputNames, s.outputNames);
    if (!data) return 'unfeedable';
    let out;
    try {
      out = await s.run(data.feeds);
    } catch {
      return 'error';
    }
    return s.outputNames.every((n) => out[n] && closeTo(out[n], data.expected[n])) ? 'pass' : 'fail';
  } finally {
    await s.release();
  }
}
