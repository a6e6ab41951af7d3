import { rowStats } from '../bench/compile-stats';

/** The compile study's arithmetic (bench/compile-stats.ts) on given numbers; nothing here is timed. */
test('best ÷ best floor, and the per-round ratios row_i ÷ floor_i with their whole range below 5 rounds', () => {
  // the floor's best (1000) and the row's best (2400) fall in different rounds
  const s = rowStats([1000, 4000, 2000], [3000, 2400, 5000], [170, 168, 172]);
  expect(s.best).toBe(2400);
  expect(s.worst).toBe(5000);
  expect(s.ratioBest).toBeCloseTo(2.4, 12);
  // per round: 3, 0.6, 2.5 → median 2.5, interval the whole range, coverage 1 − 2^(1−3)
  expect(s.perRound.median).toBeCloseTo(2.5, 12);
  expect(s.perRound.lo).toBeCloseTo(0.6, 12);
  expect(s.perRound.hi).toBeCloseTo(3, 12);
  expect(s.perRound.level).toBeCloseTo(0.75, 12);
  expect(s.perRound.n).toBe(3);
  expect([s.rssLo, s.rssHi]).toEqual([168, 172]);
});

test('from 5 rounds on the interval is order statistics of ≥ 90%, narrower than the range', () => {
  const floor = [1, 1, 1, 1, 1, 1, 1, 1, 1];
  const s = rowStats(floor, [1, 2, 3, 4, 5, 6, 7, 8, 9], [NaN, 100, 200, NaN, 150, 120, 130, 140, 110]);
  expect(s.perRound.median).toBe(5);
  expect(s.perRound.lo).toBeGreaterThan(1);
  expect(s.perRound.hi).toBeLessThan(9);
  expect(s.perRound.level).toBeGreaterThanOrEqual(0.9);
  // a round without a memory figure does not count in its range
  expect([s.rssLo, s.rssHi]).toEqual([100, 200]);
});

test('rounds that do not pair with the floor are refused, not divided', () => {
  expect(() => rowStats([1000, 1000], [2000], [1])).toThrow(/1 rounds of a row against 2 of the floor/);
  expect(() => rowStats([], [], [])).toThrow();
});
