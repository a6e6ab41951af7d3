import { pairedRatio, spread } from '../src/runtime/timing';

test('spread gives the median and quartiles', () => {
  expect(spread([5, 1, 3, 2, 4])).toEqual({ median: 3, p25: 2, p75: 4, n: 5 });
});

test('a paired ratio is within noise when its quartiles straddle 1, and not when the variant is clearly faster', () => {
  const base = [100, 104, 98, 101, 99, 103];
  expect(pairedRatio(base, [101, 99, 100, 103, 98, 104]).withinNoise).toBe(true);
  const faster = pairedRatio(base, base.map((b) => b / 2));
  expect(faster).toMatchObject({ median: 2, withinNoise: false });
});
