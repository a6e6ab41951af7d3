import { spread, Spread } from '../src/runtime/timing';

/**
 * The arithmetic of the compile study (bench/compile-study.ts), apart from its timing so a test can
 * check it: one row's rounds against the floor's rounds of the same run.
 */
export interface RowStats {
  /** fastest round (ms) and the slowest */
  best: number;
  worst: number;
  /** best of this row ÷ best of the floor: both at their luckiest moment of the disk */
  ratioBest: number;
  /**
   * The per-round ratios row_i ÷ floor_i (round i's floor was taken just before round i's row, so the
   * disk's state of the moment hits both): their median and its distribution-free interval from order
   * statistics — the whole range below 5 rounds, covering the median with probability `level`
   * (1 − 2^(1−n): 75% at 3 rounds), ≥ 90% from 5 rounds on (src/runtime/timing.ts).
   */
  perRound: Spread;
  /** peak resident memory over the rounds (MB), lowest and highest */
  rssLo: number;
  rssHi: number;
}

export function rowStats(floorMs: number[], ms: number[], rssMb: number[]): RowStats {
  if (!ms.length || ms.length !== floorMs.length) throw new Error(`compile study: ${ms.length} rounds of a row against ${floorMs.length} of the floor`);
  const finite = rssMb.filter((x) => Number.isFinite(x));
  return {
    best: Math.min(...ms),
    worst: Math.max(...ms),
    ratioBest: Math.min(...ms) / Math.min(...floorMs),
    perRound: spread(ms.map((m, i) => m / floorMs[i])),
    rssLo: finite.length ? Math.min(...finite) : NaN,
    rssHi: finite.length ? Math.max(...finite) : NaN,
  };
}
