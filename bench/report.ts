import type { BenchResult, ModelResult, Variant } from './run';
import type { Spread } from '../src/runtime/timing';
import type { CompileStudy } from './compile-study';

const f = (x: number | undefined | null, d = 0) => (x === undefined || x === null || Number.isNaN(x) ? '–' : x.toFixed(d));
/** A figure with the ~90% confidence interval of its median: `412 (398–430)` (quartiles in results written before it existed). */
const withSpread = (s: Spread | undefined, d = 0) => (s ? `${f(s.median, d)} (${f(s.lo ?? s.p25, d)}–${f(s.hi ?? s.p75, d)})` : '–');
/** A ratio over paired samples with its median's interval, marked when that contains 1 (no measurable change). */
const ratio = (r: (Spread & { withinNoise: boolean }) | undefined) =>
  r ? `${r.median.toFixed(2)}× (${(r.lo ?? r.p25).toFixed(2)}–${(r.hi ?? r.p75).toFixed(2)})${r.withinNoise ? ' ≈ within noise' : ''}` : '–';
const topOps = (ops: Record<string, number> | undefined, n = 6) =>
  ops ? Object.entries(ops).slice(0, n).map(([k, v]) => `${k.replace('ai.onnx::', '').replace('com.microsoft::', 'ms:')} ${v}`).join(', ') : '–';

function variantRow(v: Variant): string {
  if (v.refused) return `| ${v.name} | ${f(v.nodes)} | ${v.compile ? f(v.compile.wallMs) : '–'} | | | | | | refused: ${v.refused} |`;
  const compile = v.compile ? `${f(v.compile.wallMs)}${v.compile.maxRssMb === null || Number.isNaN(v.compile.maxRssMb) ? '' : ` / ${f(v.compile.maxRssMb)} MB`}` : '–';
  const ceiling = v.ceilingFraction === undefined ? '–' : `${(v.ceilingFraction * 100).toFixed(0)}%`;
  return `| ${v.name} | ${f(v.nodes)} | ${compile} | ${withSpread(v.create)} | ${v.createRatio ? ratio(v.createRatio) : 'baseline'} | ${withSpread(v.run, 1)} | ${v.runRatio ? ratio(v.runRatio) : 'baseline'} | ${ceiling} | ${v.relError === undefined ? '' : `err ${v.relError.toExponential(1)}`} |`;
}

function modelSection(m: ModelResult): string {
  const lines = [`### ${m.id}`, '', `Inputs: ${Object.entries(m.shapes).map(([k, v]) => `${k} ${v.join('×')}`).join(', ')}.`];
  if (m.inspect) lines.push(`\`sdc inspect\`: ${f(m.inspect.wallMs)} ms wall, ${f(m.inspect.maxRssMb)} MB peak RSS.` + (m.passesNone ? ` \`sdc compile --passes none\` (read + write of all weights): ${(m.passesNone.wallMs / 1000).toFixed(1)} s, ${f(m.passesNone.maxRssMb)} MB peak RSS.` : ''));
  lines.push('');
  lines.push('| variant | nodes | compile ms / peak RSS | session create ms, median (interval) | create ratio orig/variant | run ms, median (interval) | run ratio orig/variant | % of MatMul ceiling | check |');
  lines.push('|---|---|---|---|---|---|---|---|---|');
  for (const v of m.variants) lines.push(variantRow(v));
  lines.push('');
  for (const v of m.variants) {
    if (v.ops) lines.push(`- ${v.name} ops: ${topOps(v.ops)}; Shape ${v.ops['ai.onnx::Shape'] ?? 0}${v.compile?.counts ? `; ${Object.entries(v.compile.counts).map(([k, n]) => `${k} ${n}`).join(', ')}` : ''}${v.compile?.passesMs ? `; passes ${f(v.compile.passesMs)} ms` : ''}`);
  }
  lines.push('');
  return lines.join('\n');
}

/** One line per model: every ratio a user gets from sdc, against the original in the same run, with its spread. */
function summary(r: BenchResult): string[] {
  const pick = (m: ModelResult, name: string) => m.variants.find((v) => v.name === name);
  const cols: [string, string][] = [['sdc default', 'sdc default'], ['sdc reduce-overhead', 'sdc reduce-overhead'], ['sdc runtime (cached specialization)', 'runtime, cached specialization'], ['onnxruntime offline (all, saved)', 'onnxruntime offline']];
  const lines = [
    '## Summary',
    '',
    'Ratios are original ÷ variant (above 1: the variant is faster), medians over paired samples; in brackets a distribution-free',
    'confidence interval of the median (order statistics, ≥ 90% where there are 5 samples or more; the whole range below that).',
    '"≈ within noise" marks a ratio whose interval contains 1, i.e. no change this machine can measure.',
    '',
    `| model | nodes orig → sdc default | ${cols.map(([, h]) => `${h}: create ratio / run ratio`).join(' | ')} |`,
    `|---|---|${cols.map(() => '---').join('|')}|`,
  ];
  for (const m of r.models) {
    const o = pick(m, 'original');
    const d = pick(m, 'sdc default');
    const cells = cols.map(([name]) => {
      const v = pick(m, name);
      return v?.refused ? 'refused' : `${ratio(v?.createRatio)} / ${ratio(v?.runRatio)}`;
    });
    lines.push(`| ${m.id} | ${f(o?.nodes)} → ${f(d?.nodes)} | ${cells.join(' | ')} |`);
  }
  lines.push('');
  return lines;
}

const sec = (ms: number) => (ms / 1000).toFixed(2);
const range = (xs: number[], d = 0) => (xs.length ? `${f(Math.min(...xs), d)}–${f(Math.max(...xs), d)}` : '–');

/** The compile study (bench/compile-study.ts): every row beside the floor of the same rounds. */
function compileSection(c: CompileStudy): string {
  const m = c.machine;
  const gb = (c.model.dataBytes / 1e9).toFixed(2);
  const level = c.rows[0]?.stats.perRound.level ?? 0;
  const interval = c.rounds >= 5 ? 'a distribution-free ≥ 90% confidence interval of that median (order statistics)'
    : c.rounds >= 2 ? `their whole range, which covers their median with probability ${(level * 100).toFixed(0)}% (1 − 2^(1−n) for n = ${c.rounds} rounds)`
    : 'the one round\'s ratio again (one round gives no interval)';
  const lines = [
    '## Compile speed and memory',
    '',
    `Generated by \`${c.command}\` on ${c.date.slice(0, 10)} (commit ${c.commit}). Machine: ${m.cpu} × ${m.cores}, ${m.memGiB} GiB,`,
    `${m.kernel}, node ${m.node}; outputs on ${m.outputFs}, source on ${m.sourceFs}. Other processes may have been running${m.load ? ` (1-minute load average ${m.load[0].toFixed(1)} at the start, ${m.load[1].toFixed(1)} at the end)` : ''}.`,
    '',
    `Model: ${c.model.id} (${gb} GB data file). ${c.rounds} round${c.rounds === 1 ? '' : 's'}, interleaved: each round the floor, then every row in`,
    'the order below, so drift of the disk (writeback of other processes, the host) hits every row alike. Before each step',
    '`sync` runs untimed; after it the output is removed, untimed. The source files are read once before round 1.',
    '',
    `- **Floor**: ${c.floor.how}. The least any compile that writes these weights`,
    '  costs; it is fsynced because sdc\'s writer fsyncs its output.',
    '- **compile()** rows: the library call in a fresh process (`node dist/bench/child.js compile MODEL OUT OPTIONS`), timed',
    '  inside it (process start and module loading excluded); peak RSS is that process\'s own VmHWM. Reduce-overhead',
    `  specializes to \`${c.model.shapes}\`; fp16 has no calibration (no \`ranges\`: the rules only).`,
    '- **CLI** row: `bin/sdc compile MODEL -o OUT --target cpu` from spawn to exit: node\'s start, sdc\'s compile and the',
    '  check that onnxruntime loads the output (in a child process). Its peak RSS is the sum of VmRSS over the CLI\'s',
    '  process tree, sampled every 100 ms (a spike shorter than that can be missed).',
    `- **÷ floor, best**: best of the row ÷ best floor. **÷ floor, per round**: the ratios row_i ÷ floor_i of each round`,
    `  (round i's floor ran just before round i's row): their median, in brackets ${interval}.`,
    '',
    '| step | s, best (range) | ÷ floor, best | ÷ floor, per round: median (interval) | peak RSS MB (range) | process s, best |',
    '|---|---|---|---|---|---|',
    `| floor: kernel copy + fsync | ${sec(Math.min(...c.floor.ms))} (${sec(Math.min(...c.floor.ms))}–${sec(Math.max(...c.floor.ms))}) | 1 | 1 | – | ${sec(Math.min(...c.floor.wallMs))} |`,
  ];
  for (const r of c.rows) {
    const s = r.stats;
    const pr = s.perRound;
    lines.push(`| ${r.name}${r.timed === 'CLI process' ? ' (process wall)' : ''} | ${sec(s.best)} (${sec(s.best)}–${sec(s.worst)}) | ${s.ratioBest.toFixed(1)} | ${pr.median.toFixed(1)} (${pr.lo.toFixed(1)}–${pr.hi.toFixed(1)}) | ${range([s.rssLo, s.rssHi])} | ${sec(Math.min(...r.wallMs))} |`);
  }
  const cli = c.rows.find((r) => r.largestProcessMb?.length);
  if (cli) lines.push('', `CLI: the largest single process of the tree peaked at ${range(cli.largestProcessMb!)} MB (its VmHWM as last sampled).`);
  lines.push('', `Every round's figures are in the JSON beside this page (docs/benchmarks.json, \`compileStudy\`).`, '');
  return lines.join('\n');
}

export function renderMarkdown(r: BenchResult, gpu: string | null): string {
  // only the compile study has run into this file (`--only=compile --out=NEW`): no model figures to show
  if (!r.models.length && r.compileStudy) return ['# Benchmarks', '', compileSection(r.compileStudy)].join('\n');
  return [
    '# Benchmarks',
    '',
    `Generated by \`${r.command}\` on ${r.date.slice(0, 10)} (commit ${r.versions.commit}). Machine: ${r.machine}.`,
    `Versions: sdc ${r.versions.sdc}, node ${r.versions.node}, onnxruntime-node ${r.versions['onnxruntime-node']}. CPU execution provider.`,
    '',
    'How to read: every variant runs beside the original in the same process, runs alternated in pairs',
    '(original, variant) after a warm-up; session creation is timed in fresh processes, alternated with the',
    "original's, after both models' files were read once (the page cache is the same for both sides). Every",
    'figure is a median with a ~90% confidence interval of it; ratio = original / variant (above 1 is faster). Sessions use',
    'graphOptimizationLevel "all" unless the variant says otherwise; the runtime\'s cached specialization and the',
    'onnxruntime offline model are both finalized by onnxruntime at "all", saved, and opened with "disabled". A',
    'variant whose outputs differ from the original by more than 1e-4 (relative to the largest output) is refused,',
    'not timed.',
    ...summary(r),
    '## Per model',
    '',
    `"% of MatMul ceiling": GFLOP of Conv/MatMul/Gemm/attention at these shapes ÷ the ${r.matmulGflops.toFixed(0)} GFLOP/s a`,
    '2048³ MatMul reaches in the same run, divided by the measured time (GFLOP counted once, from sdc\'s static output).',
    '',
    ...r.models.map(modelSection),
    ...(r.compileStudy ? [compileSection(r.compileStudy)] : []),
    ...(r.fusionCounts ? ['## Fused sites by target', '', `From \`sdc compile --dry-run\` of each model for each target at commit ${r.fusionCountsCommit ?? r.versions.commit} (sites fused per pattern; the last column counts the`, 'Transposes left in the output: for cuda after channels-last, beside the NCHW graphs of cpu and webgpu).', '', r.fusionCounts, ''] : []),
    '## GPU',
    '',
    gpu ?? 'Not measured: no GPU machine was lent to the session that ran this benchmark. See docs/benchmarks-gpu.md when one has been.',
    '',
  ].join('\n');
}
