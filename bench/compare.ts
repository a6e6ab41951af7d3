import type { BenchResult } from './run';

type Interval = { median: number; lo?: number; hi?: number; p25: number; p75: number };

const lo = (s: Interval) => s.lo ?? s.p25;
const hi = (s: Interval) => s.hi ?? s.p75;
const fmt = (s: Interval) => `${s.median.toFixed(2)}× (${lo(s).toFixed(2)}–${hi(s).toFixed(2)})`;

/**
 * Two benchmark results side by side: every ratio of one with the same ratio of the other, and whether
 * their printed intervals overlap (the two runs agree within their spreads).
 */
export function compareResults(a: BenchResult, b: BenchResult, names: [string, string]): { markdown: string; agree: number; disagree: number } {
  const rows: string[] = [];
  let agree = 0;
  let disagree = 0;
  for (const ma of a.models) {
    const mb = b.models.find((m) => m.id === ma.id);
    if (!mb) continue;
    for (const va of ma.variants) {
      const vb = mb.variants.find((v) => v.name === va.name);
      if (!vb) continue;
      for (const metric of ['createRatio', 'runRatio'] as const) {
        const x = va[metric];
        const y = vb[metric];
        if (!x || !y) continue;
        const overlap = lo(x) <= hi(y) && lo(y) <= hi(x);
        if (overlap) agree++;
        else disagree++;
        rows.push(`| ${ma.id} | ${va.name} | ${metric === 'createRatio' ? 'session create' : 'run'} | ${fmt(x)} | ${fmt(y)} | ${overlap ? 'yes' : '**no**'} |`);
      }
    }
  }
  const markdown = [
    `| model | variant | ratio | ${names[0]} | ${names[1]} | intervals overlap |`,
    '|---|---|---|---|---|---|',
    ...rows,
    '',
    `${agree} of ${agree + disagree} ratios agree within their intervals.`,
  ].join('\n');
  return { markdown, agree, disagree };
}
