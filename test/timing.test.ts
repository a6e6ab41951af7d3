import { medianInterval, pairedRatio, spread } from '../src/runtime/timing';

test('spread gives the median, quartiles and an interval for the median', () => {
  expect(spread([5, 1, 3, 2, 4])).toEqual({ median: 3, p25: 2, p75: 4, lo: 1, hi: 5, level: 0.9375, n: 5 });
});

test('the median interval: order statistics covering the median with at least 90% where the samples allow it', () => {
  const ranks = (n: number) => [...Array(n).keys()].map((i) => i + 1);
  // below 5 samples no pair of order statistics reaches 90%: the whole range, with its true coverage
  expect(medianInterval(ranks(3))).toEqual({ lo: 1, hi: 3, level: 0.75 });
  expect(medianInterval(ranks(11))).toMatchObject({ lo: 3, hi: 9 });
  expect(medianInterval(ranks(11)).level).toBeCloseTo(0.9346, 4);
  expect(medianInterval(ranks(21))).toMatchObject({ lo: 7, hi: 15 });
  // coverage by simulation: draws from a skewed distribution, the interval holds its true median ≥ 90%
  let seed = 7;
  const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
  const exp = () => -Math.log(1 - rand());
  let covered = 0;
  for (let t = 0; t < 2000; t++) {
    const s = Array.from({ length: 11 }, exp).sort((a, b) => a - b);
    const { lo, hi } = medianInterval(s);
    if (lo <= Math.LN2 && Math.LN2 <= hi) covered++;
  }
  expect(covered / 2000).toBeGreaterThan(0.9);
});

test('a paired ratio is within noise when its interval contains 1, and not when the variant is clearly faster', () => {
  const base = [100, 104, 98, 101, 99, 103];
  expect(pairedRatio(base, [101, 99, 100, 103, 98, 104]).withinNoise).toBe(true);
  const faster = pairedRatio(base, base.map((b) => b / 2));
  expect(faster).toMatchObject({ median: 2, withinNoise: false });
});
