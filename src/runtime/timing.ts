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
