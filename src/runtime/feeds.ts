import * as ort from 'onnxruntime-node';

/** Deterministic inputs of the given shapes (uniform in [-1, 1); an input named timestep gets 500). */
export function syntheticFeeds(shapes: Map<string, number[]>, types: Map<string, string>): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  let seed = 12345;
  for (const [name, dims] of shapes) {
    const n = dims.reduce((a, b) => a * b, 1);
    const type = types.get(name) ?? 'float32';
    if (type !== 'float32') throw new Error(`sdc run feeds float32 inputs only; '${name}' is ${type}`);
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      seed = (seed * 1103515245 + 12345) >>> 0;
      data[i] = /timestep/i.test(name) ? 500 : seed / 2 ** 31 - 1;
    }
    feeds[name] = new ort.Tensor('float32', data, dims);
  }
  return feeds;
}
