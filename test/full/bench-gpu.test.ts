import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { compile } from '../../src/compiler/compile';
import { webgpuF16Unavailable } from '../../src/runtime/session';
import { usingSwiftShader } from '../../src/runtime/swiftshader';
import { tinyPath, tmpDir } from '../helpers/ort';
import { gpuTest } from '../helpers/webgpu';

const dir = tmpDir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

interface Variant {
  name: string;
  failed?: string;
  skipped?: string;
  run?: { median: number };
  vsFp32?: { median: number };
  relError?: number;
  placement?: { dispatches: number; cpuNodes: unknown[]; memcpy: number; kernels: number; byOp: Record<string, number> };
}

/**
 * The GPU benchmark runs end to end on whatever adapter is here (SwiftShader in CI), so that a session
 * lent a GPU only has to run it: every variant measured, kernel counts from the profile, the page
 * written, and the counts say what sdc did: fewer dispatches than the as-exported model in every sdc
 * row, and the fused attention ops the compiled model holds (counted from a compile here) ran on the GPU.
 */
gpuTest('npm run bench -- --target webgpu --quick writes the GPU page with every variant measured', async () => {
  const out = path.join(dir, 'benchmarks-gpu.md');
  const root = path.resolve(__dirname, '..', '..');
  const r = spawnSync(process.execPath, [path.join(root, 'dist', 'bench', 'run.js'), '--target', 'webgpu', '--quick', '--runs=1', '--only=tiny sdpa', `--out=${out}`], { encoding: 'utf8', env: process.env });
  expect(r.status).toBe(0);
  const page = fs.readFileSync(out, 'utf8');
  expect(page).toMatch(/^Adapter: \*\*.+\*\*/m);
  const result = JSON.parse(fs.readFileSync(out.replace(/\.md$/, '.json'), 'utf8'));
  expect(result.models.map((m: { id: string }) => m.id)).toEqual(['tiny sdpa_op17']);
  const variants = result.models[0].variants as Variant[];
  expect(variants.map((v) => v.name)).toEqual([
    'as exported',
    'sdc default',
    'sdc reduce-overhead',
    'sdc reduce-overhead, preferredLayout NHWC',
    'sdc reduce-overhead fp16',
    'sdc reduce-overhead fp16, preferredLayout NHWC',
  ]);
  // fp16 needs shader-f16 (SwiftShader has none): then the rows say why, and nothing else is left out
  const f16 = await webgpuF16Unavailable();
  const measured = variants.filter((v) => !(v.name.includes('fp16') && f16));
  for (const v of variants) {
    expect(v.failed).toBeUndefined();
    if (measured.includes(v)) continue;
    expect(v.skipped).toBe(f16);
    expect(page).toContain(`| ${v.name} | not run: ${f16} |`);
  }
  expect(measured.length).toBeGreaterThanOrEqual(4);
  for (const v of measured) {
    expect(v.skipped).toBeUndefined();
    expect(v.run!.median).toBeGreaterThan(0);
    if (v.name.includes('fp16')) expect(v.vsFp32!.median).toBeGreaterThan(0);
    expect(page).toContain(`| ${v.name} | ${v.run!.median.toFixed(1)}`);
    expect(v.placement!.kernels).toBeGreaterThan(0);
    expect(page).toContain(`| ${v.placement!.dispatches} | ${v.placement!.cpuNodes.length} | ${v.placement!.memcpy} |`);
  }

  const [asExported, ...sdc] = measured;
  const fused = (mode: 'default' | 'reduce-overhead') =>
    compile(tinyPath('unet_sdpa_op17'), { dryRun: true, target: 'webgpu', mode, shapes: mode === 'reduce-overhead' ? 'sample=2x4x32x32,timestep=2,encoder_hidden_states=2x16x32' : null }).opsAfter;
  const expected = { default: fused('default'), 'reduce-overhead': fused('reduce-overhead') };
  for (const v of sdc) {
    // numbers: within what the provider gets right (SwiftShader's attention is off for queries ≥ 32, docs/webgpu.md)
    expect(v.relError).toBeLessThan(usingSwiftShader() ? 0.5 : v.name.includes('fp16') ? 2e-2 : 1e-3);
    expect(v.placement!.dispatches).toBeLessThan(asExported.placement!.dispatches);
    // the 12 attention sites, 6 of them packed self-attention, ran fused on the GPU
    const ops = expected[v.name.startsWith('sdc default') ? 'default' : 'reduce-overhead'];
    const mha = ops['com.microsoft::MultiHeadAttention'] ?? 0;
    const packed = ops['com.microsoft::Attention'] ?? 0;
    expect([mha, packed]).toEqual([6, 6]);
    expect(v.placement!.byOp['webgpu:MultiHeadAttention'] ?? 0).toBe(mha);
    expect(v.placement!.byOp['webgpu:Attention'] ?? 0).toBe(packed);
  }
  expect(asExported.placement!.byOp['webgpu:MultiHeadAttention'] ?? 0).toBe(0);
  const specialized = sdc.find((v) => v.name === 'sdc reduce-overhead')!;
  expect(specialized.placement!.cpuNodes).toEqual([]);
  expect(specialized.placement!.memcpy).toBe(0);
}, 1800000); // 5-10 minutes on SwiftShader on a shared 2-core machine
