import * as ort from 'onnxruntime-node';

export const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1];

/**
 * Time several sessions on the same inputs: one warm-up run each, then `rounds` rounds that run each
 * session once in turn, so drift (thermal, other load) hits all alike. Returns each session's times (ms).
 */
export async function alternateRuns(sessions: ort.InferenceSession[], feeds: Record<string, ort.Tensor>, rounds: number): Promise<number[][]> {
  for (const s of sessions) await s.run(feeds);
  const times: number[][] = sessions.map(() => []);
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < sessions.length; i++) {
      const t0 = performance.now();
      await sessions[i].run(feeds);
      times[i].push(performance.now() - t0);
    }
  }
  return times;
}

/** A measured figure with its spread: the median and the quartiles of the samples. */
export interface Spread {
  median: number;
  p25: number;
  p75: number;
  /** A distribution-free confidence interval of the median (order statistics), at `level` coverage. */
  lo: number;
  hi: number;
  level: number;
  n: number;
}

function quantile(sorted: number[], q: number): number {
  const i = (sorted.length - 1) * q;
  const lo = Math.floor(i);
  return sorted[lo] + (sorted[Math.ceil(i)] - sorted[lo]) * (i - lo);
}

/** P(Binomial(n, 1/2) ≤ k) */
function binomialCdf(n: number, k: number): number {
  let p = 0;
  let c = 1; // C(n, i)
  for (let i = 0; i <= k; i++) {
    p += c;
    c = (c * (n - i)) / (i + 1);
  }
  return p / 2 ** n;
}

/**
 * The narrowest symmetric pair of order statistics [x(k), x(n+1-k)] that covers the median with at least
 * 90% probability whatever the distribution; with fewer than 5 samples no pair reaches 90%, and the
 * interval is the whole range (its coverage, 1 − 2^(1−n), is what is reported). Quartiles of 3–5 samples
 * are far narrower than the run-to-run variation they are read as.
 */
export function medianInterval(sorted: number[], want = 0.9): { lo: number; hi: number; level: number } {
  const n = sorted.length;
  if (n === 0) return { lo: NaN, hi: NaN, level: 0 };
  let k = 1; // 1-based rank of the lower bound
  while (k + 1 <= n + 1 - (k + 1) && 1 - 2 * binomialCdf(n, k) >= want) k++;
  return { lo: sorted[k - 1], hi: sorted[n - k], level: 1 - 2 * binomialCdf(n, k - 1) };
}

export function spread(xs: number[]): Spread {
  const s = [...xs].sort((a, b) => a - b);
  return { median: quantile(s, 0.5), p25: quantile(s, 0.25), p75: quantile(s, 0.75), ...medianInterval(s), n: s.length };
}

/**
 * The ratio baseline/variant from paired samples (taken alternately, so the i-th of each saw the same
 * conditions): its median and the median's confidence interval over the pairs. It is within noise when
 * that interval contains 1.
 */
export function pairedRatio(baseline: number[], variant: number[]): Spread & { withinNoise: boolean } {
  const r = spread(baseline.map((b, i) => b / variant[i]));
  return { ...r, withinNoise: r.lo <= 1 && r.hi >= 1 };
}
