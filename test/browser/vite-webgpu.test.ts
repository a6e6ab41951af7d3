import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import type { Browser, Page } from 'playwright-core';
import { launchChromium, serveFolder } from '../helpers/browser';
import { relError, runModel, tinyPath, tmpDir } from '../helpers/ort';

/**
 * examples/vite-webgpu for real: `vite build` with the sdc plugin, the built app served on 127.0.0.1 and
 * opened in headless chromium, where onnxruntime-web runs the compiled UNet on WebGPU (SwiftShader) and
 * on wasm; the page's numbers are compared with onnxruntime-node running the original model.
 */
const ROOT = path.resolve(__dirname, '..', '..');
const EXAMPLE = path.join(ROOT, 'examples', 'vite-webgpu');
const VITE = path.join(ROOT, 'node_modules', 'vite', 'bin', 'vite.js');
const dir = tmpDir('sdc-browser-');
const outDir = path.join(dir, 'dist');
let browser: Browser | null = null;
let server: Awaited<ReturnType<typeof serveFolder>> | null = null;

afterAll(async () => {
  await browser?.close();
  await server?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

function viteBuild(): string {
  return execFileSync(process.execPath, [VITE, 'build', EXAMPLE, '--outDir', outDir, '--emptyOutDir'], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, VITE_CONFIG_NATIVE_IGNORE_WARNING: 'true' } });
}

const summaryLine = (log: string) => log.split('\n').find((l) => /^sdc: \d+ models?:/.test(l.trim()))?.trim();

test('vite build compiles each imported model once, and a second build compiles nothing', () => {
  fs.rmSync(path.join(EXAMPLE, 'node_modules', '.cache', 'sdc'), { recursive: true, force: true });
  expect(summaryLine(viteBuild())).toBe('sdc: 2 models: 2 compiled, 0 from cache (node_modules/.cache/sdc)');
  expect(summaryLine(viteBuild())).toBe('sdc: 2 models: 0 compiled, 2 from cache (node_modules/.cache/sdc)');
  const emitted = fs.readdirSync(path.join(outDir, 'assets')).filter((f) => f.endsWith('.onnx'));
  expect(emitted).toHaveLength(2);
  for (const f of emitted) expect(f).toMatch(/^unet_sdpa_op17\.[0-9a-f]{16}\.onnx$/);
}, 300000);

/** Inputs of the given dims, the same in node and in the page: latent noise, timestep 500, conditioning. */
function inputsFor(dims: Record<string, number[]>, seed: number): Record<string, { dims: number[]; data: number[] }> {
  let s = seed >>> 0;
  const next = () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
  return Object.fromEntries(
    Object.entries(dims).map(([name, d]) => {
      const size = d.reduce((a, b) => a * b, 1);
      return [name, { dims: d, data: name === 'timestep' ? new Array(size).fill(500) : Array.from({ length: size }, next) }];
    }),
  );
}

test('the built app runs the compiled model in chromium on webgpu and on wasm, equal to onnxruntime-node on the original', async () => {
  server = await serveFolder(outDir);
  browser = await launchChromium();
  const page: Page = await browser.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(server.url);
  await page.waitForSelector('body[data-ready]', { timeout: 240000 });
  const ready = await page.getAttribute('body', 'data-ready');
  const status = await page.textContent('#status');
  expect(errors).toEqual([]);
  expect(ready).not.toBe('error');
  if (process.env.SDC_REQUIRE_WEBGPU === '1') expect(ready).toBe('webgpu'); // .ci/run: chromium's SwiftShader must offer an adapter
  expect(status).toMatch(new RegExp(`provider: ${ready}`));
  expect(status).toMatch(/median of 3 calls: [\d.]+ ms/);
  expect(status).toMatch(/out_sample \[1x4x4x4\]: mean -?[\d.]+, std [\d.]+/);

  const inputs: { name: string; dims: number[] }[] = await page.evaluate(() => (window as any).sdcExample.compiled.webgpu.inputs);
  const feeds = inputsFor(Object.fromEntries(inputs.map((i) => [i.name, i.dims])), 7);
  const want = await runModel(tinyPath('unet_sdpa_op17'), Object.fromEntries(Object.entries(feeds).map(([k, f]) => [k, new ort.Tensor('float32', Float32Array.from(f.data), f.dims)])));
  for (const provider of ['wasm', 'webgpu']) {
    const got = await page.evaluate(async ([p, f]) => (window as any).sdcExample.run(p, f), [provider, feeds] as const);
    expect(got.provider).toBe(provider);
    const out = got.outputs.out_sample;
    expect(out.dims).toEqual([...want.out_sample.dims]);
    expect(out.data.every(Number.isFinite)).toBe(true);
    // attention queries are 16 long at these dims: below the SwiftShader flash-attention fault (docs/webgpu.md)
    expect(relError(want.out_sample, new ort.Tensor('float32', Float32Array.from(out.data), out.dims))).toBeLessThan(1e-4);
  }
}, 600000);

/**
 * The webgpu column of the kernel table against onnxruntime-web's default WebGPU implementation (JSEP):
 * single-op models at a size the table gives webgpu, and at one it refuses because JSEP does.
 */
test('JSEP in the page: BiasSplitGelu and BiasAdd at the table\'s sizes equal the definition; the sizes the table refuses fail there', async () => {
  if (!browser || !server) throw new Error('the app test did not start the browser');
  const page = (await browser.contexts()[0]?.pages()[0]) ?? (await browser.newPage());
  const { singleBiasOp } = await import('../helpers/graphs');
  const { parseTarget } = await import('../../src/targets');
  const webgpu = parseTarget('webgpu');
  const cases = [['BiasSplitGelu', 'hidden', 2560], ['BiasSplitGelu', 'hidden', 256], ['BiasAdd', 'channels', 320], ['BiasAdd', 'channels', 32]] as const;
  for (const [op, size, c] of cases) {
    const { file, lowered, feeds } = singleBiasOp(op, c, dir, [1, 2]);
    const got = await page.evaluate(
      async ([bytes, f]) => {
        const ort = (window as any).sdcExample.ort;
        try {
          const session = await ort.InferenceSession.create(Uint8Array.from(bytes as number[]), { executionProviders: ['webgpu'] });
          const tensors: Record<string, unknown> = {};
          for (const [k, v] of Object.entries(f as Record<string, { dims: number[]; data: number[] }>)) tensors[k] = new ort.Tensor('float32', Float32Array.from(v.data), v.dims);
          const out = Object.values(await session.run(tensors))[0] as { data: Float32Array; dims: number[] };
          return { data: Array.from(out.data), dims: out.dims };
        } catch (e) {
          return { error: String((e as Error).message ?? e) };
        }
      },
      [Array.from(fs.readFileSync(file)), feeds] as const,
    );
    const accepted = webgpu.accepts('com.microsoft', op, { sizes: { [size]: c } }) === null;
    if (accepted) {
      expect(got).not.toHaveProperty('error');
      const want = Object.values(await runModel(lowered, Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, new ort.Tensor('float32', Float32Array.from(v.data), v.dims)]))))[0];
      expect(relError(want, new ort.Tensor('float32', Float32Array.from((got as { data: number[] }).data), (got as { dims: number[] }).dims))).toBeLessThan(1e-5);
    } else {
      expect((got as { error?: string }).error).toMatch(/should be (2560, 5120 or 10240|320, 640 or 1280)/);
    }
  }
}, 300000);
