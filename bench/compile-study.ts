import { execFileSync, spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { sd15Model } from '../fixtures/materialize';
import { terminalProgress } from '../src/compiler/progress';
import { rowStats, RowStats } from './compile-stats';

/**
 * The compile speed and memory study of `npm run bench` (alone: `npm run bench -- --only=compile`):
 * sdc's compile of the SD1.5 UNet (sdpa export, synthesized weights) for each target and precision,
 * against the floor of any compile that writes its weights: a kernel-side copy of the data file,
 * fsynced as sdc's writer fsyncs its output. Rounds are interleaved (the floor, then every row, then
 * again) so the disk's drift — writeback of other processes, the host's own — hits every row alike;
 * before each step `sync` runs untimed and after it the output is removed untimed.
 */
const SHAPES = 'sample=1x4x32x32,timestep=1,encoder_hidden_states=1x77x768';

interface RowSpec {
  name: string;
  /** library compile() options in a fresh `child.js compile` process, or the CLI's arguments after the output */
  library?: Record<string, unknown>;
  cli?: string[];
}

const ROWS: RowSpec[] = [
  { name: 'cpu default', library: { target: 'cpu', mode: 'default' } },
  { name: 'cpu reduce-overhead', library: { target: 'cpu', mode: 'reduce-overhead', shapes: SHAPES } },
  { name: 'webgpu reduce-overhead', library: { target: 'webgpu', mode: 'reduce-overhead', shapes: SHAPES } },
  { name: 'cuda default', library: { target: 'cuda', mode: 'default' } },
  // no `ranges`: the rules only, no calibration run (the CLI calibrates unless --no-calibrate)
  { name: 'cpu default fp16', library: { target: 'cpu', mode: 'default', precision: 'fp16' } },
  { name: '`sdc compile` CLI, cpu default', cli: ['--target', 'cpu'] },
];

interface StudyRow {
  name: string;
  /** what `ms` times: the compile() call inside its process, or the CLI process from spawn to exit */
  timed: 'compile()' | 'CLI process';
  ms: number[];
  /** each round's process from spawn to exit (node's start and module loading included) */
  wallMs: number[];
  /**
   * compile(): the process's own VmHWM (exact). CLI: the sum of VmRSS over its process tree (sdc and the
   * onnxruntime child that opens the output), sampled every SAMPLE_MS.
   */
  rssMb: number[];
  /** CLI: the largest single process's VmHWM seen in each round (the onnxruntime load check's child, typically) */
  largestProcessMb?: number[];
  stats: RowStats;
}

export interface CompileStudy {
  date: string;
  command: string;
  commit: string;
  machine: { cpu: string; cores: number; memGiB: number; kernel: string; node: string; outputFs: string; sourceFs: string;
    /** 1-minute load average when the study started and when it ended: how busy the shared machine was */
    load?: [number, number] };
  model: { id: string; file: string; dataBytes: number; shapes: string };
  rounds: number;
  floor: { how: string; ms: number[]; wallMs: number[] };
  rows: StudyRow[];
}

const SAMPLE_MS = 100;

function child(args: string[]): { ms: number; wallMs: number; maxRssMb: number } {
  execFileSync('sync');
  const t0 = performance.now();
  const out = execFileSync(process.execPath, [path.join(__dirname, 'child.js'), ...args], { encoding: 'utf8', maxBuffer: 64 << 20, stdio: ['ignore', 'pipe', 'pipe'] });
  const wallMs = performance.now() - t0;
  const r = JSON.parse(out.trim().split('\n').pop()!);
  return { ms: r.ms, wallMs, maxRssMb: r.maxRssMb };
}

/** Parent pid of every process, from /proc/<pid>/stat (this kernel has no /proc/<pid>/task/<tid>/children). */
function parents(): Map<number, number[]> {
  const kids = new Map<number, number[]>();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      kids.set(ppid, [...(kids.get(ppid) ?? []), Number(d)]);
    } catch {
      /* ended meanwhile */
    }
  }
  return kids;
}

/** VmRSS and VmHWM (MB) of `root` and its descendants now. */
function treeMemory(root: number): { rss: number; hwm: Map<number, number> } {
  const kids = parents();
  const pids = [root];
  for (let i = 0; i < pids.length; i++) pids.push(...(kids.get(pids[i]) ?? []));
  let rss = 0;
  const hwm = new Map<number, number>();
  for (const pid of pids) {
    try {
      const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
      rss += Number(/VmRSS:\s+(\d+)/.exec(s)?.[1] ?? 0) / 1024;
      hwm.set(pid, Number(/VmHWM:\s+(\d+)/.exec(s)?.[1] ?? 0) / 1024);
    } catch {
      /* ended meanwhile (or a zombie, which has no memory) */
    }
  }
  return { rss, hwm };
}

/** `bin/sdc compile` as a user runs it: wall time from spawn to exit, memory of its process tree sampled. */
function cliRound(src: string, out: string, args: string[], root: string): Promise<{ wallMs: number; rssMb: number; largestMb: number }> {
  execFileSync('sync');
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const p = spawn(process.execPath, [path.join(root, 'bin', 'sdc'), 'compile', src, '-o', out, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    p.stderr.on('data', (d) => (stderr += d));
    let peak = 0;
    const hwm = new Map<number, number>();
    const sample = () => {
      if (p.pid === undefined) return;
      const m = treeMemory(p.pid);
      peak = Math.max(peak, m.rss);
      for (const [pid, mb] of m.hwm) hwm.set(pid, Math.max(hwm.get(pid) ?? 0, mb));
    };
    const timer = setInterval(sample, SAMPLE_MS);
    p.on('error', reject);
    p.on('exit', (code) => {
      const wallMs = performance.now() - t0;
      clearInterval(timer);
      if (code !== 0) reject(new Error(`sdc compile ${args.join(' ')} exited ${code}: ${stderr.trim().split('\n')[0]}`));
      else resolve({ wallMs, rssMb: peak, largestMb: Math.max(0, ...hwm.values()) });
    });
  });
}

function removeOutput(out: string): void {
  for (const f of fs.readdirSync(path.dirname(out))) {
    if (f.startsWith(path.basename(out))) fs.rmSync(path.join(path.dirname(out), f), { force: true });
  }
}

/** Filesystem type and device of a folder, as `df --output=fstype` names them (`stat -f` calls ext4 "ext2/ext3"). */
function fsOf(dir: string): string {
  try {
    const [source, type] = execFileSync('df', ['--output=source,fstype', dir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim().split('\n')[1].trim().split(/\s+/);
    return `${type} on ${source}`;
  } catch {
    return 'unknown';
  }
}

/** Read a file once, so round 1 finds the source in the page cache like every later round. */
function warm(file: string): void {
  const buf = Buffer.alloc(16 << 20);
  const fd = fs.openSync(file, 'r');
  try {
    while (fs.readSync(fd, buf, 0, buf.length, null) > 0);
  } finally {
    fs.closeSync(fd);
  }
}

export async function compileStudy(o: { rounds: number; dir: string; root: string; command: string; commit: string; log: (s: string) => void }): Promise<CompileStudy> {
  const src = sd15Model('sdpa_op17', terminalProgress());
  const data = `${src}.data`;
  const out = path.join(o.dir, 'compiled.onnx');
  const copy = path.join(o.dir, 'floor.data');
  o.log(`compile study: ${o.rounds} rounds of the floor and ${ROWS.length} compiles of ${src}`);
  const loadBefore = os.loadavg()[0];
  warm(src);
  warm(data);
  const floor = { how: 'the data file copied in the kernel (`fs.copyFileSync`: copy_file_range), then fsynced, timed in a fresh process', ms: [] as number[], wallMs: [] as number[] };
  const raw = ROWS.map(() => ({ ms: [] as number[], wallMs: [] as number[], rssMb: [] as number[], largestMb: [] as number[] }));
  for (let r = 0; r < o.rounds; r++) {
    const c = child(['copy', data, copy]);
    fs.rmSync(copy, { force: true });
    floor.ms.push(c.ms);
    floor.wallMs.push(c.wallMs);
    o.log(`round ${r + 1}: floor ${(c.ms / 1000).toFixed(2)} s`);
    for (const [i, row] of ROWS.entries()) {
      if (row.library) {
        const s = child(['compile', src, out, JSON.stringify(row.library)]);
        raw[i].ms.push(s.ms);
        raw[i].wallMs.push(s.wallMs);
        raw[i].rssMb.push(s.maxRssMb);
      } else {
        const s = await cliRound(src, out, row.cli!, o.root);
        raw[i].ms.push(s.wallMs);
        raw[i].wallMs.push(s.wallMs);
        raw[i].rssMb.push(s.rssMb);
        raw[i].largestMb.push(s.largestMb);
      }
      removeOutput(out);
      o.log(`round ${r + 1}: ${row.name} ${(raw[i].ms[r] / 1000).toFixed(2)} s, ${raw[i].rssMb[r].toFixed(0)} MB`);
    }
  }
  execFileSync('sync');
  return {
    date: new Date().toISOString(),
    command: o.command,
    commit: o.commit,
    machine: {
      cpu: os.cpus()[0]?.model ?? 'cpu',
      cores: os.cpus().length,
      memGiB: Math.round(os.totalmem() / 2 ** 30),
      kernel: `${os.type()} ${os.release()}`,
      node: process.version,
      outputFs: `${fsOf(o.dir)} (${o.dir})`,
      sourceFs: fsOf(path.dirname(src)),
      load: [loadBefore, os.loadavg()[0]],
    },
    model: { id: 'SD1.5 UNet sdpa_op17, synthesized weights', file: src, dataBytes: fs.statSync(data).size, shapes: SHAPES },
    rounds: o.rounds,
    floor,
    rows: ROWS.map((row, i) => ({
      name: row.name,
      timed: row.library ? 'compile()' : 'CLI process',
      ms: raw[i].ms,
      wallMs: raw[i].wallMs,
      rssMb: raw[i].rssMb,
      ...(row.cli ? { largestProcessMb: raw[i].largestMb } : {}),
      stats: rowStats(floor.ms, raw[i].ms, raw[i].rssMb),
    })),
  };
}
