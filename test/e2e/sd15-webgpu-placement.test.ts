import * as fs from 'fs';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { compile } from '../../src/compiler/compile';
import { sd15Model } from '../../fixtures/materialize';
import { readModel } from '../../src/onnx/read';
import { profilePlacement } from '../../src/runtime/placement';
import { recommendedSession } from '../../src/targets/session-options';
import { tmpDir, unetFeeds } from '../helpers/ort';
import { gpuTest } from '../helpers/webgpu';

const dir = tmpDir('sdc-e2e-');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/**
 * SD1.5 sdpa_op17 on the WebGPU provider (SwiftShader here), batch 1, 8×8 latent, 77 tokens: sdc's
 * reduce-overhead output with the options it recommends runs at most 40% of the as-exported model's GPU
 * dispatches (the exported model opened with the provider's defaults), with nothing on the CPU, no
 * copies and no Transposes beyond the graph's own (docs/webgpu.md).
 */
gpuTest('SD1.5 reduce-overhead for webgpu: ≤ 40% of the dispatches, 0 CPU nodes, 0 copies', async () => {
  const src = sd15Model('sdpa_op17');
  const feeds = unetFeeds(1, 8, 77, 768);
  const exported = await profilePlacement(src, feeds, { executionProviders: ['webgpu'] });
  const out = path.join(dir, 'sd15.webgpu.onnx');
  compile(src, { output: out, target: 'webgpu', mode: 'reduce-overhead', shapes: Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, [...t.dims]])) });
  const m = readModel(out, { allowMissingData: true });
  const mine = await profilePlacement(out, feeds, recommendedSession((k) => m.getMetadata(k)).options as ort.InferenceSession.SessionOptions);
  console.log(`SD1.5 webgpu dispatches: as exported ${exported.dispatches} (${exported.cpuNodes.length} CPU, ${exported.memcpy} copies, ${exported.transposes} Transposes); sdc reduce-overhead ${mine.dispatches} (${mine.cpuNodes.length}, ${mine.memcpy}, ${mine.transposes})`);
  expect(mine.dispatches).toBeLessThanOrEqual(0.4 * exported.dispatches);
  expect(mine.cpuNodes).toEqual([]);
  expect(mine.memcpy).toBe(0);
  expect(mine.transposes).toBeLessThanOrEqual(m.graph.nodes.filter((n) => n.opType === 'Transpose').length);
}, 1200000);
