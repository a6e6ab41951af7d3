import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { compile } from '../src/compiler/compile';
import { SdcError } from '../src/ir/errors';
import { readModel } from '../src/onnx/read';
import { ModelProto } from '../src/onnx/schema';
import { ModelBuilder } from '../src/ir/builder';
import { tinyPath, tmpDir } from './helpers/ort';
import { saveModel } from '../src/onnx/write';

/* eslint-disable @typescript-eslint/no-explicit-any */
const dir = tmpDir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const SDC = path.resolve(__dirname, '..', 'bin', 'sdc');

/** A small model whose one weight lives in an external file, in its own folder. */
function externalModel(name: string): string {
  const sub = path.join(dir, name);
  fs.mkdirSync(sub, { recursive: true });
  const b = new ModelBuilder();
  const x = b.input('x', [4]);
  const w = b.const('w', [4], [1, 2, 3, 4]);
  b.output(b.op('Add', [x, w]), [4]);
  return saveModel(b.model, path.join(sub, 'model.onnx'), { externalData: 'always', sizeThreshold: 0 });
}

/** Rewrite the ModelProto of `file` in place with `edit` (to plant a fault). */
function tamper(file: string, edit: (m: any) => void): string {
  const m = ModelProto.decode(fs.readFileSync(file)) as any;
  edit(m);
  fs.writeFileSync(file, ModelProto.encode(m).finish());
  return file;
}

function setExternal(m: any, key: string, value: string) {
  const e = m.graph.initializer[0].externalData.find((x: any) => x.key === key);
  if (e) e.value = value;
  else m.graph.initializer[0].externalData.push({ key, value });
}

/** A small model whose one weight is inline (raw bytes), in its own folder. */
function inlineModel(name: string): string {
  const sub = path.join(dir, name);
  fs.mkdirSync(sub, { recursive: true });
  const b = new ModelBuilder();
  const x = b.input('x', [4]);
  b.output(b.op('Add', [x, b.const('w', [4], [1, 2, 3, 4])]), [4]);
  return saveModel(b.model, path.join(sub, 'model.onnx'), { externalData: 'never' });
}

/** Plant a typed-field payload in the inline weight. */
const typed = (name: string, edit: (t: any) => void) => () => tamper(inlineModel(name), (m) => { const t = m.graph.initializer[0]; t.rawData = new Uint8Array(0); edit(t); });

/** External data reached through a link that leaves the model's folder. */
function linked(name: string, folderLink: boolean): string {
  const file = externalModel(name);
  const outside = path.join(dir, `${name}-outside.bin`);
  fs.writeFileSync(outside, Buffer.alloc(16, 7));
  const link = path.join(path.dirname(file), folderLink ? 'lnk' : 'w.bin');
  fs.rmSync(link, { force: true });
  if (folderLink) {
    fs.symlinkSync('..', link);
    return tamper(file, (m) => setExternal(m, 'location', `lnk/${path.basename(outside)}`));
  }
  fs.symlinkSync(outside, link);
  return tamper(file, (m) => setExternal(m, 'location', 'w.bin'));
}

const faults: [string, () => string, RegExp][] = [
  ['external data through a file link that leaves the folder', () => linked('filelink', false), /external data 'w\.bin' leads outside the model's folder through a link/],
  ['external data through a folder link to ..', () => linked('dirlink', true), /leads outside the model's folder through a link/],
  ['more typed values than the dims hold', typed('many', (t) => { t.floatData = [1, 2, 3, 4, 5]; }), /tensor 'w' holds 5 values in floatData but FLOAT\[4\] needs 4/],
  ['a 2^28-element tensor with one value (would allocate 1 GB)', typed('few', (t) => { t.dims = [2 ** 28]; t.floatData = [1]; }), /holds 1 values in floatData but FLOAT\[268435456\] needs 268435456/],
  ['a negative dim', typed('neg', (t) => { t.dims = [-4]; t.floatData = [1, 2, 3, 4]; }), /tensor 'w' has an invalid dim -4/],
  ['a dim of 2^40', typed('huge', (t) => { t.dims = [2 ** 40]; }), /1099511627776 elements, more than any model holds/],
  ['a string tensor with fewer strings than its dims', typed('str', (t) => { t.dataType = 8; t.dims = [2]; t.stringData = [Buffer.from('a')]; }), /holds 1 strings but \[2\] needs 2/],
  ['not a protobuf', () => { const f = path.join(dir, 'text.onnx'); fs.writeFileSync(f, 'this is a README, not a model\n'.repeat(20)); return f; }, /not a valid ONNX protobuf|not an ONNX model/],
  ['truncated', () => { const f = path.join(dir, 'cut.onnx'); const b = fs.readFileSync(tinyPath('unet_sdpa_op17')); fs.writeFileSync(f, b.subarray(0, b.length >> 1)); return f; }, /truncated/],
  ['empty file', () => { const f = path.join(dir, 'empty.onnx'); fs.writeFileSync(f, ''); return f; }, /empty/],
  ['unknown IR version', () => tamper(externalModel('ir'), (m) => { m.irVersion = 99; }), /IR version 99/],
  ['missing external file', () => { const f = externalModel('missing'); fs.rmSync(`${f}.data`); return f; }, /external data file 'model\.onnx\.data' is missing/],
  ['absolute external location', () => tamper(externalModel('abs'), (m) => setExternal(m, 'location', '/etc/passwd')), /is absolute/],
  ['escaping external location', () => tamper(externalModel('esc'), (m) => setExternal(m, 'location', '../abs/model.onnx.data')), /escapes the model's folder/],
  ['offset past the end', () => tamper(externalModel('off'), (m) => setExternal(m, 'offset', '4096')), /runs past the end/],
  ['length past the end', () => tamper(externalModel('len'), (m) => setExternal(m, 'length', '1000000')), /runs past the end/],
  ['duplicate value names', () => tamper(externalModel('dup'), (m) => { m.graph.node.push({ ...m.graph.node[0], name: 'again' }); }), /duplicate value name/],
  ['opset not imported', () => tamper(externalModel('opset'), (m) => { m.graph.node[0].domain = 'com.example'; }), /domain 'com.example', which the model does not import/],
  ['an input named \'\'', () => tamper(inlineModel('empty-name'), (m) => { m.graph.input[0].name = ''; m.graph.node[0].input[0] = ''; }), /graph input 0 has an empty name; a caller cannot name it/],
  ['an input name holding a NUL', () => tamper(inlineModel('nul-name'), (m) => { m.graph.input[0].name = 'x\0y'; m.graph.node[0].input[0] = 'x\0y'; }), /graph input 0 'x\\0y' has a NUL character in its name/],
  ['dangling input', () => tamper(externalModel('dangle'), (m) => { m.graph.node[0].input[0] = 'nowhere'; }), /reads 'nowhere'/],
];

describe.each(faults)('%s', (_label, make, message) => {
  test('compile() throws an SdcError naming the file and writes nothing', () => {
    const file = make();
    const out = path.join(dir, `out-${path.basename(path.dirname(file))}-${path.basename(file)}`);
    let err: unknown;
    try {
      compile(file, { output: out, passes: [] });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SdcError);
    expect((err as SdcError).file).toBe(file);
    expect((err as Error).message).toMatch(message);
    expect(fs.existsSync(out)).toBe(false);
    expect(fs.readdirSync(path.dirname(out)).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });

  test('the CLI exits 2 with the message', () => {
    const file = make();
    const out = path.join(dir, `cli-${path.basename(path.dirname(file))}.onnx`);
    const r = spawnSync(SDC, ['compile', file, '-o', out, '--passes', 'none'], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(file);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).not.toMatch(/at .*\.js:\d+/); // a message, not a stack trace
    expect(fs.existsSync(out)).toBe(false);
  });
});

test('an external tensor is not read when the model is opened', () => {
  const file = externalModel('lazy');
  const spy = jest.spyOn(fs, 'readSync');
  const m = readModel(file);
  expect(spy).not.toHaveBeenCalled();
  const w = m.graph.values.get('w')!.initializer!;
  expect(w.data.kind).toBe('external');
  expect(Array.from(w.values() as Float32Array)).toEqual([1, 2, 3, 4]);
  spy.mockRestore();
});

test('refuses to write over the input; the input\'s weights at the output\'s data name are left alone', () => {
  const file = externalModel('clobber');
  const folder = path.dirname(file);
  expect(() => compile(file, { output: file, passes: [] })).toThrow(/over the input/);
  // weights in b.onnx.data: an output named b.onnx writes its own weights under another name
  fs.renameSync(`${file}.data`, path.join(folder, 'b.onnx.data'));
  tamper(file, (m) => setExternal(m, 'location', 'b.onnx.data'));
  const weights = fs.readFileSync(path.join(folder, 'b.onnx.data'));
  compile(file, { output: path.join(folder, 'b.onnx'), passes: [], externalData: 'always' });
  expect(fs.existsSync(path.join(folder, 'b.onnx'))).toBe(true);
  expect(fs.readFileSync(path.join(folder, 'b.onnx.data'))).toEqual(weights);
  expect(readModel(file).externalFiles()).toEqual([path.join(folder, 'b.onnx.data')]);
});

test('a model whose weights are all small leaves no data file behind', () => {
  const file = externalModel('small');
  const out = path.join(path.dirname(file), 'small-out.onnx');
  compile(file, { output: out, passes: [] });
  expect(fs.readdirSync(path.dirname(file)).sort()).toEqual(['model.onnx', 'model.onnx.data', 'small-out.onnx']);
});

test('a FIFO as input is refused at once instead of hanging', () => {
  const fifo = path.join(dir, 'pipe.onnx');
  spawnSync('mkfifo', [fifo]);
  const r = spawnSync(SDC, ['compile', fifo, '-o', path.join(dir, 'fifo-out.onnx')], { encoding: 'utf8', timeout: 20000 });
  expect(r.status).toBe(2);
  expect(r.stderr).toMatch(/pipe\.onnx: is not a regular file \(a FIFO, socket or device\)/);
});

test('-o naming a folder, or empty, is refused with exit 2', () => {
  for (const o of [dir, '']) {
    const r = spawnSync(SDC, ['compile', tinyPath('unet_dynamo_op18'), '-o', o], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(o ? /is a folder; -o names the model file to write/ : /compile needs -o OUT/);
  }
});

test('--report naming the input, its weights or the output is refused, and nothing is overwritten', () => {
  const file = externalModel('report');
  const before = fs.readFileSync(`${file}.data`);
  for (const report of [file, `${file}.data`, path.join(dir, 'report-out.onnx')]) {
    expect(() => compile(file, { output: path.join(dir, 'report-out.onnx'), passes: [], report })).toThrow(/--report names a file this compile reads or writes/);
  }
  expect(fs.readFileSync(`${file}.data`)).toEqual(before);
});

test('--shape with a dim too large for a tensor, or an input given twice, is refused', () => {
  const r1 = spawnSync(SDC, ['compile', tinyPath('unet_sdpa_op17'), '-o', path.join(dir, 's.onnx'), '--mode', 'reduce-overhead', '--shape', 'sample=99999999999999999999x4x32x32,timestep=1,encoder_hidden_states=1x16x32'], { encoding: 'utf8' });
  expect(r1.status).toBe(2);
  expect(r1.stderr).toMatch(/dim 99999999999999999999 is too large/);
  const r2 = spawnSync(SDC, ['compile', tinyPath('unet_sdpa_op17'), '-o', path.join(dir, 's.onnx'), '--mode', 'reduce-overhead', '--shape', 'sample=1x4x32x32,sample=2x4x32x32'], { encoding: 'utf8' });
  expect(r2.status).toBe(2);
  expect(r2.stderr).toMatch(/--shape gives 'sample' twice/);
});

test('opsets that are not versions, or newer than sdc knows, and nodes without an op type are invalid', () => {
  for (const [edit, message] of [
    [(m: any) => { m.opsetImport[0].version = 0; }, /imports opset 0 of 'ai\.onnx', which is not a version/],
    [(m: any) => { m.opsetImport[0].version = -5; }, /imports opset -5/],
    [(m: any) => { m.opsetImport[0].version = 999; }, /imports ai\.onnx opset 999; sdc knows opsets up to \d+/],
    [(m: any) => { m.graph.node[0].opType = ''; }, /has no op type/],
  ] as const) {
    const file = tamper(inlineModel(`opset-${String(message).length}`), edit);
    expect(() => compile(file, { output: path.join(dir, 'opset-out.onnx'), passes: [] })).toThrow(message);
  }
});

test('inspect validates: a dangling input is exit 2, not a description', () => {
  const file = tamper(externalModel('inspect-dangle'), (m) => { m.graph.node[0].input[0] = 'nowhere'; });
  const r = spawnSync(SDC, ['inspect', file], { encoding: 'utf8' });
  expect(r.status).toBe(2);
  expect(r.stderr).toMatch(/is not a valid model:\n {2}node .* reads 'nowhere'/);
});

// A hang guard, not a speed claim: validation is linear in the model's size (it was quadratic in the
// readers of one value: 200k readers took about a minute), so this finishes far inside the limit.
test('a value with 200k readers validates', () => {
  const b = new ModelBuilder();
  const x = b.input('x', [1]);
  for (let i = 0; i < 200_000; i++) b.op('Neg', [x], {}, { name: `n${i}` });
  b.output(x);
  const { validate } = require('../src/ir/validate');
  expect(validate(b.model)).toEqual([]);
}, 10000);

describe('replacing an output: readers see the old pair or the new pair, never a mix', () => {
  test('the new weights get a name of their own; between the two renames the old model still runs on its own weights', async () => {
    const { compileStaged } = await import('../src/compiler/compile');
    const { runModel, unetFeeds, relError } = await import('./helpers/ort');
    const folder = path.join(dir, 'pair');
    const out = path.join(folder, 'unet.onnx');
    const first = compile(tinyPath('unet_sdpa_op17'), { output: out, passes: [], externalData: 'always' });
    expect(first.dataFile).toBe(`${out}.data`);
    const feeds = unetFeeds(1, 32, 16, 32);
    const want = (await runModel(tinyPath('unet_sdpa_op17'), feeds)).out_sample;

    const { report, staged } = compileStaged(tinyPath('unet_sdpa_op17'), { output: out, externalData: 'always' });
    expect(path.basename(report.dataFile!)).toMatch(/^unet\.onnx\.sdc[0-9a-z]+\.data$/);
    // a kill right after the first rename: the new data file is in place, the old model is still there
    fs.copyFileSync(staged!.dataFile!, report.dataFile!);
    expect(relError(want, (await runModel(out, feeds)).out_sample)).toBeLessThan(1e-4);
    staged!.commit();
    expect(relError(want, (await runModel(out, feeds)).out_sample)).toBeLessThan(1e-4);
    // the old model's weights went with it; no stage folder is left
    expect(fs.readdirSync(folder).sort()).toEqual(['unet.onnx', path.basename(report.dataFile!)].sort());
  });

  test('a compile never removes weights another model reads: an edited copy of the output keeps its weights', async () => {
    const { runModel, unetFeeds, relError } = await import('./helpers/ort');
    const folder = path.join(dir, 'edited');
    const out = path.join(folder, 'out.onnx');
    compile(tinyPath('unet_sdpa_op17'), { output: out, passes: [], externalData: 'always' });
    // a graph edited and saved beside the output, still reading out.onnx.data
    const edited = path.join(folder, 'edited.onnx');
    fs.copyFileSync(out, edited);
    const r = spawnSync(SDC, ['compile', edited, '-o', out], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(fs.existsSync(`${out}.data`)).toBe(true);
    const feeds = unetFeeds(1, 32, 16, 32);
    const want = (await runModel(tinyPath('unet_sdpa_op17'), feeds)).out_sample;
    expect(relError(want, (await runModel(edited, feeds)).out_sample)).toBeLessThan(1e-4);
    expect(relError(want, (await runModel(out, feeds)).out_sample)).toBeLessThan(1e-4);
    // compiled again: the weights out.onnx read before are its own (sdc's, read by nothing else) and go
    fs.rmSync(edited);
    const before = readModel(out).externalFiles();
    expect(before.map((f) => path.basename(f))).toEqual([expect.stringMatching(/^out\.onnx\.sdc[0-9a-z]+\.data$/)]);
    const again = compile(tinyPath('unet_sdpa_op17'), { output: out, passes: [], externalData: 'always' });
    for (const f of before) expect(fs.existsSync(f)).toBe(false);
    // out.onnx.data was read by a model sdc did not write: no longer read, but not provably sdc's, it stays
    expect(fs.readdirSync(folder).sort()).toEqual(['out.onnx', 'out.onnx.data', path.basename(again.dataFile!)].sort());
  });

  test('two builds to one new output never share a data file: whichever commits last, its graph sits beside its own weights, and the other\'s weights go', async () => {
    const { compileStaged } = await import('../src/compiler/compile');
    const { runModel, unetFeeds, relError } = await import('./helpers/ort');
    const feeds = unetFeeds(1, 32, 16, 32);
    const want = (await runModel(tinyPath('unet_sdpa_op17'), feeds)).out_sample;
    for (const order of [[0, 1], [1, 0]]) {
      const folder = path.join(dir, `race-${order.join('')}`);
      const out = path.join(folder, 'unet.onnx');
      const a = compileStaged(tinyPath('unet_sdpa_op17'), { output: out, passes: [], externalData: 'always' });
      const b = compileStaged(tinyPath('unet_sdpa_op17'), { output: out, externalData: 'always', precision: 'fp16' });
      expect(a.report.dataFile).not.toBe(b.report.dataFile);
      const builds = [a, b];
      for (const i of order) builds[i].staged!.commit();
      const last = builds[order[1]];
      expect(readModel(out).externalFiles()).toEqual([last.report.dataFile]);
      expect(relError(want, (await runModel(out, feeds)).out_sample)).toBeLessThan(order[1] === 1 ? 5e-2 : 1e-4);
      expect(fs.readdirSync(folder).sort()).toEqual(['unet.onnx', path.basename(last.report.dataFile!)].sort());
    }
  });

  test('-o naming something that exists and is not a regular file (a FIFO) is refused with exit 2, nothing written', () => {
    const folder = path.join(dir, 'fifo-o');
    fs.mkdirSync(folder, { recursive: true });
    const fifo = path.join(folder, 'out.onnx');
    spawnSync('mkfifo', [fifo]);
    const r = spawnSync(SDC, ['compile', tinyPath('unet_dynamo_op18'), '-o', fifo], { encoding: 'utf8', timeout: 20000 });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/out\.onnx: exists and is not a regular file/);
    expect(fs.readdirSync(folder)).toEqual(['out.onnx']);
    expect(fs.statSync(fifo).isFIFO()).toBe(true);
  });

  test('stage folders of killed compiles are removed by the next compile into their folder', () => {
    const folder = path.join(dir, 'stale');
    fs.mkdirSync(folder, { recursive: true });
    const dead = spawnSync(process.execPath, ['-e', 'console.log(process.pid)'], { encoding: 'utf8' }).stdout.trim();
    const stale = path.join(folder, `.m.onnx.sdc-stage-${dead}-abc123`);
    fs.mkdirSync(stale);
    fs.writeFileSync(path.join(stale, 'm.onnx.data'), Buffer.alloc(1024));
    // a killed compile to another output of the folder (its copy of the weights made ahead), and one still running
    const other = path.join(folder, `.other.onnx.sdc-stage-${dead}-def456`);
    fs.mkdirSync(other);
    fs.writeFileSync(path.join(other, 'weights.copy'), Buffer.alloc(1024));
    // and the commit lock of a killed compile: taken over, then released
    fs.writeFileSync(path.join(folder, '.m.onnx.sdc-commit-lock'), dead);
    const live = `.other.onnx.sdc-stage-${process.ppid}-ghi789`;
    fs.mkdirSync(path.join(folder, live));
    compile(tinyPath('unet_dynamo_op18'), { output: path.join(folder, 'm.onnx'), passes: [] });
    expect(fs.readdirSync(folder).sort()).toEqual([live, 'm.onnx']);
  });
});

test('an op type that is not an ONNX operator in the default domain is invalid, naming the node', () => {
  const file = tamper(inlineModel('unknown-op'), (m) => { m.graph.node[0].opType = 'Addd'; });
  expect(() => compile(file, { output: path.join(dir, 'unknown-op-out.onnx'), passes: [] })).toThrow(/node '.*' \(Addd\) is not an ONNX operator \(ai\.onnx\); a custom op needs a domain of its own/);
});

/** Whether this process may mount a tmpfs (root in a container usually may): the full-disk tests need one, else they show as skipped. */
function canMount(): boolean {
  const probe = fs.mkdtempSync(path.join(dir, 'mount-probe-'));
  const ok = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=16k', 'tmpfs', probe]).status === 0;
  if (ok) spawnSync('umount', [probe]);
  return ok;
}

describe('where sdc writes: a report path or an output folder it cannot write is one sdc: line, exit 2, before anything is compiled', () => {
  const root = process.getuid?.() === 0;
  const mounts = canMount();
  const small = inlineModel('report-src');
  const sdc = (...args: string[]) => spawnSync(SDC, args, { encoding: 'utf8', timeout: 30000 });
  const oneLine = (r: ReturnType<typeof sdc>, problem: RegExp) => {
    expect([r.status, r.stderr.match(/^sdc: /gm)?.length, r.stderr]).toEqual([2, 1, expect.stringMatching(problem)]);
    expect(r.stderr).not.toMatch(/internal error|\n\s+at /);
  };

  test.each([
    ['a missing folder', (f: string) => path.join(f, 'nowhere', 'r.json'), /the folder \S+nowhere does not exist; --report needs an existing folder; nothing was written/],
    ['a folder', (f: string) => { fs.mkdirSync(path.join(f, 'rdir')); return path.join(f, 'rdir'); }, /rdir: is a folder; --report names the file to write; nothing was written/],
    ['a FIFO', (f: string) => { spawnSync('mkfifo', [path.join(f, 'r.json')]); return path.join(f, 'r.json'); }, /r\.json: exists and is not a regular file .*--report names the file to write/],
  ])('--report onto %s: refused before compiling, the output not written', (label, make, problem) => {
    const folder = fs.mkdtempSync(path.join(dir, 'report-'));
    const report = make(folder);
    const before = fs.readdirSync(folder).sort();
    oneLine(sdc('compile', small, '-o', path.join(folder, 'out.onnx'), '--report', report), problem);
    expect(fs.readdirSync(folder).sort()).toEqual(before);
  });

  (mounts ? test : test.skip)('a report write that fails on a full disk (a 16 KiB tmpfs) leaves no <report>.tmp-PID and says the output was written', () => {
    const folder = fs.mkdtempSync(path.join(dir, 'enospc-'));
    expect(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=16k', 'tmpfs', folder]).status).toBe(0);
    try {
      fs.writeFileSync(path.join(folder, 'fill'), Buffer.alloc(16 << 10)); // whatever fits, then the disk is full
    } catch {
      /* full */
    }
    const out = path.join(dir, 'enospc-out.onnx');
    try {
      oneLine(sdc('compile', small, '-o', out, '--report', path.join(folder, 'r.json')), /r\.json: cannot write the report \(ENOSPC\); the compiled output was written, the report was not$/m);
      expect(fs.readdirSync(folder)).toEqual(['fill']);
      expect(fs.existsSync(out)).toBe(true);
    } finally {
      spawnSync('umount', [folder]);
    }
  });

  // root writes anywhere it may: a read-only mount stands for the folder; elsewhere a chmod does
  (!root || mounts ? test : test.skip)('-o in a folder sdc cannot write in: exit 2 naming it, nothing written', () => {
    const folder = fs.mkdtempSync(path.join(dir, 'ro-'));
    if (root) expect(spawnSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=64k', 'tmpfs', folder]).status).toBe(0);
    else fs.chmodSync(folder, 0o555);
    try {
      oneLine(sdc('compile', small, '-o', path.join(folder, 'out.onnx')), /out\.onnx: cannot write in \S+ \((EACCES|EROFS)\); nothing was written/);
      expect(fs.readdirSync(folder)).toEqual([]);
    } finally {
      if (root) spawnSync('umount', [folder]);
      else fs.chmodSync(folder, 0o755);
    }
  });

  (mounts ? test : test.skip)('a copy of the weights made ahead that the writer does not use gives its space back first (84 MB source, 80 MB output, a 150 MB tmpfs)', () => {
    // a dead 4 MB weight first in the file: every kept one moves, so the writer cannot start from the copy
    const b = new ModelBuilder();
    b.const('unused', [1 << 20], new Float32Array(1 << 20).fill(1));
    let x = b.input('x', [1, 1024]);
    for (let i = 0; i < 20; i++) x = b.op('MatMul', [x, b.const(`w${i}`, [1024, 1024], new Float32Array(1 << 20).fill(i / 1024))]);
    b.output(x, [1, 1024]);
    const src = saveModel(b.model, path.join(dir, 'shifted.onnx'), { externalData: 'always' });
    expect(fs.statSync(`${src}.data`).size).toBeGreaterThan(84e6);
    const folder = fs.mkdtempSync(path.join(dir, 'tight-'));
    expect(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=150m', 'tmpfs', folder]).status).toBe(0);
    try {
      const r = sdc('compile', src, '-o', path.join(folder, 'out.onnx'));
      expect([r.status, r.stderr]).toEqual([0, '']);
      expect(fs.readdirSync(folder).sort()).toEqual(['out.onnx', 'out.onnx.data']);
    } finally {
      spawnSync('umount', [folder]);
    }
  });

  (mounts ? test : test.skip)('the runtime cache and -o on a full disk (a 64 KiB tmpfs): one sdc: line saying so, nothing cached or written', () => {
    const folder = fs.mkdtempSync(path.join(dir, 'full-'));
    expect(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', folder]).status).toBe(0);
    try {
      const r = sdc('run', tinyPath('unet_sdpa_op17'), '--shape', 'sample=1x4x8x8,timestep=1,encoder_hidden_states=1x8x32', '--cache-dir', path.join(folder, 'c'));
      oneLine(r, /c: the cache folder is full \(.*\): nothing was cached; free space/);
      expect(fs.readdirSync(path.join(folder, 'c'))).toEqual([]);
      oneLine(sdc('compile', tinyPath('unet_sdpa_op17'), '-o', path.join(folder, 'out.onnx')), /\/out\.onnx: no space left on the device; nothing was written/);
      expect(fs.readdirSync(folder)).toEqual(['c']);
    } finally {
      spawnSync('umount', [folder]);
    }
  });
});

test('load() refuses an input named \'\' or holding a NUL at once, naming the model (not at the first run, in onnxruntime)', async () => {
  const { load } = require('../src/runtime') as typeof import('../src/runtime');
  const file = tamper(inlineModel('load-nul'), (m) => { m.graph.input[0].name = 'a\0b'; m.graph.node[0].input[0] = 'a\0b'; });
  await expect(load(file, { cacheDir: null })).rejects.toMatchObject({ file, problem: expect.stringMatching(/is not a valid model:\n  graph input 0 'a\\0b' has a NUL character/) });
});

describe('hostile attributes onnxruntime would read are refused before it sees the model', () => {
  test.each([
    ['2^63-1', 2n ** 63n - 1n, /node 'ln' \(LayerNormalization\) has axis 9223372036854775807, which no tensor has/],
    ['past the rank', 5, /node 'ln' \(LayerNormalization\) has axis 5, out of range for its input of rank 3/],
  ])('a LayerNormalization axis of %s: exit 2 naming the node, no stage folder left', (_label, axis, problem) => {
    const b = new ModelBuilder(17);
    const x = b.input('x', [2, 4, 8]);
    b.output(b.op('LayerNormalization', [x, b.const('s', [8], Array(8).fill(1)), b.const('b', [8], Array(8).fill(0))], { axis: -1 }, { name: 'ln' }), [2, 4, 8]);
    b.graph.nodes[0].attrs.get('axis')!.value = axis;
    const folder = fs.mkdtempSync(path.join(dir, 'axis-'));
    const src = saveModel(b.model, path.join(folder, 'ln.onnx'));
    const r = spawnSync(SDC, ['compile', src, '-o', path.join(folder, 'out.onnx')], { encoding: 'utf8' });
    expect([r.status, r.stderr]).toEqual([2, expect.stringMatching(problem)]);
    expect(fs.readdirSync(folder)).toEqual(['ln.onnx']);
  });
});

describe('a model whose sizes cannot fit, hidden behind shape computations sdc folds: the input\'s problem (exit 2, naming the node), not "a bug in sdc"', () => {
  const cases: [string, () => ModelBuilder, RegExp][] = [
    ['a MatMul operand reshaped to the wrong width', () => {
      const b = new ModelBuilder(17);
      const x = b.input('x', ['batch', 6]);
      const w = b.op('Reshape', [b.const('wflat', [24], Array.from({ length: 24 }, (_, i) => i / 24)), b.ints('wshape', [4, 6])]);
      b.output(b.op('MatMul', [x, w], {}, { name: 'mm' }));
      return b;
    }, /node 'mm' \(MatMul\) multiplies a \[\.\.\., 6\] operand by a \[4, \.\.\.\] one/],
    ['a Reshape target that does not hold the elements', () => {
      const b = new ModelBuilder(17);
      const x = b.input('x', [2, 6]);
      const target = b.op('Concat', [b.op('Slice', [b.op('Shape', [x]), b.ints('s0', [0]), b.ints('e0', [1])]), b.ints('four', [4])], { axis: 0 });
      b.output(b.op('Relu', [b.op('Reshape', [x, target], {}, { name: 'rs' })]));
      return b;
    }, /node 'rs' \(Reshape\) reshapes 12 elements into \[2, 4\]/],
  ];
  test.each(cases)('%s', (label, make, problem) => {
    const file = saveModel(make().model, path.join(dir, `inconsistent-${label.length}.onnx`));
    const out = path.join(dir, `inconsistent-${label.length}.out.onnx`);
    const r = spawnSync(SDC, ['compile', file, '-o', out], { encoding: 'utf8' });
    expect([r.status, r.stderr.trim().split('\n').length]).toEqual([2, 1]);
    expect(r.stderr).toMatch(new RegExp(`^sdc: ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: is inconsistent: ${problem.source}`));
    expect(fs.existsSync(out)).toBe(false);
  });
});
