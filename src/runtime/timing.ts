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

/** Largest |a-b| over the largest |a|: the error measure of every "same outputs" check. */
export function relError(a: ort.Tensor, b: ort.Tensor): number {
  const x = a.data as Float32Array;
  const y = b.data as Float32Array;
  if (x.length !== y.length) return Infinity;
  let scale = 0;
  let worst = 0;
  for (let i = 0; i < x.length; i++) scale = Math.max(scale, Math.abs(x[i]));
  for (let i = 0; i < x.length; i++) {
    const d = Math.abs(x[i] - y[i]);
    if (!(d <= worst)) worst = Number.isNaN(d) ? Infinity : d;
  }
  return worst / (scale || 1);
}

/** A measured figure with its spread: the median and the quartiles of the samples. */
export interface Spread {
  median: number;
  p25: number;
  p75: number;
  n: number;
}

function quantile(sorted: number[], q: number): number {
  const i = (sorted.length - 1) * q;
  const lo = Math.floor(i);
  return sorted[lo] + (sorted[Math.ceil(i)] - sorted[lo]) * (i - lo);
}

export function spread(xs: number[]): Spread {
  const s = [...xs].sort((a, b) => a - b);
  return { median: quantile(s, 0.5), p25: quantile(s, 0.25), p75: quantile(s, 0.75), n: s.length };
}

/**
 * The ratio baseline/variant from paired samples (taken alternately, so the i-th of each saw the same
 * conditions): its median and quartiles over the pairs. It is within noise when the quartiles straddle 1.
 */
export function pairedRatio(baseline: number[], variant: number[]): Spread & { withinNoise: boolean } {
  const r = spread(baseline.map((b, i) => b / variant[i]));
  return { ...r, withinNoise: r.p25 <= 1 && r.p75 >= 1 };
}
