import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { tmpDir } from './helpers/ort';
import { webgpuForTests } from './helpers/webgpu';
import { webgpuF16Unavailable } from '../src/runtime/session';

const dir = tmpDir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/**
 * The GPU benchmark runs end to end on whatever adapter is here (SwiftShader in CI), so that a session
 * lent a GPU only has to run it: every variant measured, kernel counts from the profile, the page written.
 */
test('npm run bench -- --target webgpu --quick writes the GPU page with every variant measured', async () => {
  if (!(await webgpuForTests())) return;
  const out = path.join(dir, 'benchmarks-gpu.md');
  const root = path.resolve(__dirname, '..');
  const r = spawnSync(process.execPath, [path.join(root, 'dist', 'bench', 'run.js'), '--target', 'webgpu', '--quick', '--runs=1', '--only=tiny sdpa', `--out=${out}`], { encoding: 'utf8', env: process.env });
  expect(r.status).toBe(0);
  const page = fs.readFileSync(out, 'utf8');
  expect(page).toMatch(/^Adapter: \*\*.+\*\*/m);
  const result = JSON.parse(fs.readFileSync(out.replace(/\.md$/, '.json'), 'utf8'));
  const variants = result.models[0].variants as { name: string; failed?: string; skipped?: string; run?: { median: number }; vsFp32?: { median: number }; placement?: { dispatches: number; cpuNodes: unknown[]; memcpy: number } }[];
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
  for (const v of variants) {
    expect(v.failed).toBeUndefined();
    if (v.name.includes('fp16') && f16) {
      expect(v.skipped).toBe(f16);
      expect(page).toContain(`| ${v.name} | not run: ${f16} |`);
      continue;
    }
    if (v.name.includes('fp16')) expect(v.vsFp32!.median).toBeGreaterThan(0);
    expect(v.run!.median).toBeGreaterThan(0);
    expect(page).toContain(`| ${v.name} | ${v.run!.median.toFixed(1)}`);
  }
  const [asExported, , specialized] = variants;
  expect(specialized.placement!.cpuNodes).toEqual([]);
  expect(specialized.placement!.memcpy).toBe(0);
  expect(specialized.placement!.dispatches).toBeLessThan(asExported.placement!.dispatches);
}, 600000);
