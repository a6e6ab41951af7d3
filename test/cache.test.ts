import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { randomBytes } from 'crypto';
import { DiskCache, parseBytes } from '../src/runtime/cache';
import { tmpDir } from './helpers/ort';

/* The disk cache's guarantees (docs/runtime.md, "The disk cache"), on entries of plain bytes. */
const dir = tmpDir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const KEY = (n: number) => n.toString(16).padStart(32, '0');
const deadPid = () => Number(spawnSync(process.execPath, ['-e', 'console.log(process.pid)'], { encoding: 'utf8' }).stdout.trim());

/** An entry whose "model" is a few bytes and whose data file holds `data`. */
const put = (cache: DiskCache, key: string, data: Buffer) =>
  cache.store(key, { test: true }, async (folder, dataName) => {
    fs.writeFileSync(path.join(folder, 'model.onnx'), `model of ${key} reading ${dataName}`);
    fs.writeFileSync(path.join(folder, dataName), data);
  });
const manifest = (cache: DiskCache, key: string) => JSON.parse(fs.readFileSync(path.join(cache.dir, `${key}.json`), 'utf8'));
const dataOf = (cache: DiskCache, key: string) => { const m = manifest(cache, key); return path.join(cache.dir, m.folder, m.data); };
/** 4 MB: the fast check reads 64 blocks of 16 KB, so bytes 16 KB–66 KB are between its first two. */
const BIG = 4 << 20;
const GAP = 30_000;

test('a swap of two same-size data files is caught (file identity and sampled blocks); a copy of the whole cache still serves', async () => {
  const folder = path.join(dir, 'swap');
  const warnings: string[] = [];
  const cache = DiskCache.open(folder, (w) => warnings.push(w));
  await put(cache, KEY(1), randomBytes(BIG));
  await put(cache, KEY(2), randomBytes(BIG));
  const copy = path.join(dir, 'swap-copy');
  fs.cpSync(folder, copy, { recursive: true }); // new inodes and times, same bytes
  const [a, b] = [dataOf(cache, KEY(1)), dataOf(cache, KEY(2))];
  fs.renameSync(a, `${a}.x`);
  fs.renameSync(b, a);
  fs.renameSync(`${a}.x`, b);
  expect(cache.lookup(KEY(1), (w) => warnings.push(w))).toBeNull();
  expect(cache.lookup(KEY(2), (w) => warnings.push(w))).toBeNull();
  expect(warnings.join('\n')).toMatch(/damaged \(data sampled hash mismatch\)/);
  // the damaged entry is left in place (a reader never deletes); a store replaces it
  expect(fs.existsSync(a)).toBe(true);
  const copied = DiskCache.open(copy, (w) => warnings.push(w));
  expect(copied.lookup(KEY(1), () => { throw new Error('the copy is intact'); })).not.toBeNull();
  // same bytes in the same place, but another file (a copy put in its place): the full hash decides
  const d1 = dataOf(copied, KEY(1));
  const bytes = fs.readFileSync(d1);
  bytes[GAP] ^= 0xff; // between two sampled blocks
  fs.rmSync(d1);
  fs.writeFileSync(d1, bytes);
  expect(copied.lookup(KEY(1), (w) => warnings.push(w))).toBeNull();
  expect(warnings.at(-1)).toMatch(/data replaced by another file/);
});

test('SDC_CACHE_VERIFY=full hashes the whole data file: a change between sampled blocks, same file, is caught', async () => {
  const cache = DiskCache.open(path.join(dir, 'full'), () => {});
  await put(cache, KEY(3), randomBytes(BIG));
  const d = dataOf(cache, KEY(3));
  const st = fs.statSync(d);
  const fd = fs.openSync(d, 'r+');
  // flip the byte (writing a fixed value left the file as it was when that byte was already the value: 1 in 256)
  const one = Buffer.alloc(1);
  fs.readSync(fd, one, 0, 1, GAP);
  one[0] ^= 0xff;
  fs.writeSync(fd, one, 0, 1, GAP);
  fs.closeSync(fd);
  fs.utimesSync(d, st.atime, st.mtime);
  expect(cache.lookup(KEY(3), (w) => { throw new Error(w); })).not.toBeNull(); // the fast check reads about 1 MB: it cannot see this
  process.env.SDC_CACHE_VERIFY = 'full';
  try {
    const warnings: string[] = [];
    expect(cache.lookup(KEY(3), (w) => warnings.push(w))).toBeNull();
    expect(warnings.join()).toMatch(/data hash mismatch/);
  } finally {
    delete process.env.SDC_CACHE_VERIFY;
  }
});

test('write-once: a second build of a sealed key keeps the first entry and removes its own folder; a damaged entry is replaced', async () => {
  const cache = DiskCache.open(path.join(dir, 'once'), () => {});
  const first = await put(cache, KEY(4), randomBytes(5000));
  const second = await put(cache, KEY(4), randomBytes(5000));
  expect(second).toBe(first);
  expect(fs.readdirSync(cache.dir).filter((f) => f.startsWith(KEY(4))).sort()).toEqual([path.basename(path.dirname(first)), `${KEY(4)}.json`].sort());
  fs.truncateSync(dataOf(cache, KEY(4)), 10);
  expect(cache.lookup(KEY(4), () => {})).toBeNull();
  const third = await put(cache, KEY(4), randomBytes(5000));
  expect(third).not.toBe(first);
  expect(fs.existsSync(path.dirname(first))).toBe(false);
  expect(cache.lookup(KEY(4), () => { throw new Error('intact'); })).toBe(third);
});

test('a lookup never deletes what another process is building; build folders of dead processes are removed at open', async () => {
  const folder = path.join(dir, 'live');
  const cache = DiskCache.open(folder, () => {});
  await put(cache, KEY(5), randomBytes(5000));
  // a live writer (this process stands in for it) building the same key beside a damaged entry
  const building = path.join(folder, `${KEY(5)}.b-${process.pid}-abcdef`);
  fs.mkdirSync(building);
  fs.writeFileSync(path.join(building, 'model.onnx'), 'half written');
  fs.writeFileSync(path.join(folder, `${KEY(5)}.json`), '{ damaged');
  expect(cache.lookup(KEY(5), () => {})).toBeNull();
  expect(fs.existsSync(path.join(building, 'model.onnx'))).toBe(true);
  const dead = [path.join(folder, `${KEY(6)}.b-${deadPid()}-zzzzzz`), path.join(folder, `${KEY(7)}.tmp-${deadPid()}-yyyyyy`)];
  for (const d of dead) fs.mkdirSync(d);
  fs.writeFileSync(path.join(folder, `${KEY(8)}.json.tmp-${deadPid()}-q`), '{}');
  // the build folder of an earlier sdc (no pid in its name): dead once an hour old
  const legacy = path.join(folder, `${KEY(9)}.tmp-AbC123`);
  const fresh = path.join(folder, `${KEY(9)}.tmp-DeF456`);
  for (const d of [legacy, fresh]) fs.mkdirSync(d);
  fs.utimesSync(legacy, new Date(Date.now() - 2 * 3600e3), new Date(Date.now() - 2 * 3600e3));
  dead.push(legacy);
  DiskCache.open(folder, () => {});
  for (const d of dead) expect(fs.existsSync(d)).toBe(false);
  expect(fs.existsSync(path.join(folder, `${KEY(8)}.json.tmp-${deadPid()}-q`))).toBe(false);
  expect(fs.existsSync(building)).toBe(true);
  expect(fs.existsSync(fresh)).toBe(true);
});

test('a byte budget evicts the least recently used entries after a store; the new entry stays', async () => {
  const cache = DiskCache.open(path.join(dir, 'budget'), () => {}, 25_000);
  for (const n of [10, 11]) await put(cache, KEY(n), randomBytes(10_000));
  // 10 is used after 11 was stored: 11 is now the least recently used
  const past = new Date(Date.now() - 60_000);
  fs.utimesSync(path.join(cache.dir, `${KEY(11)}.json`), past, past);
  expect(cache.lookup(KEY(10), () => {})).not.toBeNull();
  await put(cache, KEY(12), randomBytes(10_000));
  expect(cache.entries().sort()).toEqual([KEY(10), KEY(12)]);
  expect(fs.readdirSync(cache.dir).filter((f) => f.startsWith(KEY(11)))).toEqual([]);
  expect(cache.enforceBudget(undefined, 0).sort()).toEqual([KEY(10), KEY(12)]);
  expect(fs.readdirSync(cache.dir)).toEqual([]);
  expect(parseBytes('20G', 'x')).toBe(20 * 2 ** 30);
  expect(parseBytes('1.5M', 'x')).toBe(1.5 * 2 ** 20);
  expect(() => parseBytes('lots', 'SDC_CACHE_BYTES')).toThrow(/SDC_CACHE_BYTES 'lots' is not a size/);
});
