import * as fs from 'fs';
import * as path from 'path';
import { SdcError } from '../src/ir/errors';
import { validate } from '../src/ir/validate';
import { inspect } from '../src/compiler/inspect';
import { compile } from '../src/compiler/compile';
import { decodeModel } from '../src/onnx/read';
import { ModelProto } from '../src/onnx/schema';
import type { onnx } from '../src/onnx/onnx-types';

/** A small deterministic generator (xorshift32): the same seed gives the same mutants everywhere. */
export class Rng {
  constructor(private s: number) {
    if (this.s === 0) this.s = 0x9e3779b9;
  }
  next(): number {
    this.s ^= this.s << 13;
    this.s ^= this.s >>> 17;
    this.s ^= this.s << 5;
    return (this.s >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(a: T[]): T {
    return a[this.int(a.length)];
  }
}

/** Byte-level damage: bit flips, truncation, a run of bytes overwritten, a chunk duplicated. */
function mutateBytes(buf: Uint8Array, rng: Rng): Uint8Array {
  const out = Uint8Array.from(buf);
  switch (rng.int(4)) {
    case 0:
      for (let i = 0, n = 1 + rng.int(8); i < n; i++) out[rng.int(out.length)] ^= 1 << rng.int(8);
      return out;
    case 1:
      return out.subarray(0, rng.int(out.length));
    case 2: {
      const at = rng.int(out.length);
      for (let i = at; i < Math.min(out.length, at + 1 + rng.int(16)); i++) out[i] = rng.pick([0, 0xff, 0x7f, 0x80, rng.int(256)]);
      return out;
    }
    default: {
      const at = rng.int(out.length);
      const len = rng.int(Math.min(64, out.length - at));
      const merged = new Uint8Array(out.length + len);
      merged.set(out.subarray(0, at + len));
      merged.set(out.subarray(at), at + len);
      return merged;
    }
  }
}

const EXTREME = [0, -1, 1, 2 ** 31, -(2 ** 31), 2 ** 40, 2 ** 53, -7, 999];

/** Field-level damage to a decoded ModelProto: dims, types, names, attributes, opsets, locations. */
function mutateProto(m: onnx.ModelProto, rng: Rng): void {
  const g = m.graph!;
  const nodes = g.node ?? [];
  const inits = g.initializer ?? [];
  switch (rng.int(10)) {
    case 0:
      if (inits.length) rng.pick(inits).dims = [rng.pick(EXTREME), ...(rng.int(2) ? [rng.pick(EXTREME)] : [])];
      break;
    case 1:
      if (inits.length) rng.pick(inits).dataType = rng.pick([0, 1, 7, 8, 16, 22, 40, 999]);
      break;
    case 2:
      if (nodes.length) {
        const n = rng.pick(nodes);
        if (n.input?.length) n.input[rng.int(n.input.length)] = rng.pick(['', 'nowhere', n.output?.[0] ?? 'x']);
      }
      break;
    case 3:
      if (nodes.length) rng.pick(nodes).opType = rng.pick(['', 'Conv', 'Reshape', 'NoSuchOp', 'If']);
      break;
    case 4: {
      const n = nodes.length ? rng.pick(nodes) : null;
      const a = n?.attribute?.length ? rng.pick(n.attribute) : null;
      if (a) {
        a.i = rng.pick(EXTREME);
        a.ints = [rng.pick(EXTREME), rng.pick(EXTREME)];
        a.type = rng.pick([a.type, 0, 2, 7, 4, 5]);
      }
      break;
    }
    case 5:
      if (m.opsetImport?.length) m.opsetImport[0].version = rng.pick(EXTREME);
      break;
    case 6:
      if (inits.length) {
        const t = rng.pick(inits);
        t.dataLocation = 1;
        t.externalData = [{ key: 'location', value: rng.pick(['../x.bin', '/etc/passwd', 'missing.bin', '', 'a\0b']) }, { key: 'offset', value: String(rng.pick(EXTREME)) }];
      }
      break;
    case 7:
      if (inits.length) {
        const t = rng.pick(inits);
        t.rawData = new Uint8Array(0);
        t.floatData = Array.from({ length: rng.int(5) }, () => rng.next());
      }
      break;
    case 8:
      if (g.input?.length) {
        const dims = g.input[0].type?.tensorType?.shape?.dim;
        // As decoded, with the oneof's discriminator (`value`) naming the member set.
        if (dims?.length) dims[rng.int(dims.length)] = { dimValue: rng.pick(EXTREME), value: 'dimValue' } as onnx.TensorShapeProto.Dimension;
      }
      break;
    default:
      if (nodes.length > 1) {
        const a = rng.int(nodes.length);
        const b = rng.int(nodes.length);
        [nodes[a], nodes[b]] = [nodes[b], nodes[a]];
        if (nodes[a].output?.length && nodes[b].input?.length) nodes[a].input = [...(nodes[a].input ?? []), nodes[b].output?.[0] ?? ''];
      }
  }
}

export type Outcome = 'loaded' | 'refused' | { crash: string };

/**
 * The property: loading, validating and describing any bytes ends in a model or an SdcError; with
 * `deep`, so does compiling what loads (every pass of the default pipeline, for cpu, nothing written).
 */
export function tryLoad(bytes: Uint8Array, baseDir: string, deep = false): Outcome {
  try {
    const model = decodeModel(bytes, 'mutant.onnx', baseDir, true);
    const problems = validate(model);
    inspect(model);
    if (problems.length) return 'refused';
    if (deep) {
      const file = path.join(baseDir, 'mutant.onnx');
      fs.writeFileSync(file, bytes);
      compile(file, { dryRun: true });
    }
    return 'loaded';
  } catch (e) {
    if (e instanceof SdcError) return 'refused';
    return { crash: `${(e as Error).name}: ${(e as Error).message.split('\n')[0].slice(0, 200)}` };
  }
}

/** Seeds: every conformance model (small, all op kinds) and the tiny UNets' graphs. */
export function seeds(fixtures: string): { name: string; bytes: Uint8Array }[] {
  const out: { name: string; bytes: Uint8Array }[] = [];
  for (const suite of ['onnx-1.12-node', 'onnx-1.12-simple']) {
    const root = path.join(fixtures, 'conformance', suite);
    for (const c of fs.readdirSync(root).sort()) out.push({ name: `${suite}/${c}`, bytes: fs.readFileSync(path.join(root, c, 'model.onnx')) });
  }
  return out;
}

/** One mutant of `seed`: byte-level or, for decodable seeds, field-level. */
export function mutant(seed: Uint8Array, rng: Rng): Uint8Array {
  if (rng.int(2)) return mutateBytes(seed, rng);
  const m = ModelProto.decode(seed);
  mutateProto(m, rng);
  return ModelProto.encode(m).finish();
}
