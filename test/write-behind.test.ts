import * as fs from 'fs';
import * as path from 'path';
import { WriteBehind } from '../src/onnx/write-behind';
import { randomFloats, tmpDir } from './helpers/ort';

/** The writer's writing thread: what it writes is what was handed over, wherever and in whatever pieces. */
const dir = tmpDir('sdc-write-behind-');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

test('pieces larger and smaller than a slot, handed over out of order, make the file byte for byte', () => {
  const want = Buffer.from(randomFloats(300_000, 3).buffer); // 1.2 MB
  // disjoint ranges of uneven sizes, shuffled: some span many 64 KB slots, some are a few bytes
  const cuts = [0, 7, 70_000, 70_064, 400_001, 650_000, 1_100_000, want.byteLength];
  const ranges = cuts.slice(1).map((end, i) => [cuts[i], end] as const).reverse();
  const file = path.join(dir, 'a.bin');
  const fd = fs.openSync(file, 'w');
  const w = new WriteBehind(fd, 64 << 10, 3);
  for (const [i, [from, to]] of ranges.entries()) {
    if (i % 2) w.write(want.subarray(from, to), from);
    // through writeFrom, a slot at a time, as the writer copies an unchanged tensor
    else for (let at = from; at < to; ) at += w.writeFrom((slot) => want.copy(slot, 0, at, Math.min(to, at + slot.byteLength)), at);
  }
  w.finish();
  fs.closeSync(fd);
  expect(fs.readFileSync(file).equals(want)).toBe(true);
});

test('a write that fails is thrown by the writer with its code, and the thread ends', () => {
  const file = path.join(dir, 'b.bin');
  fs.writeFileSync(file, 'x');
  const fd = fs.openSync(file, 'r'); // not open for writing: every write fails with EBADF
  const w = new WriteBehind(fd, 64 << 10, 2);
  expect(() => {
    for (let i = 0; i < 10; i++) w.write(Buffer.alloc(64 << 10, i), i << 16);
    w.finish();
  }).toThrow(expect.objectContaining({ code: 'EBADF' }));
  w.stop();
  fs.closeSync(fd);
  expect(fs.readFileSync(file, 'utf8')).toBe('x');
});
