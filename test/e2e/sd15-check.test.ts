import * as fs from 'fs';
import * as path from 'path';
import { sd15Model } from '../../fixtures/materialize';
import { compileChecked } from '../../src/verify/check';
import { tmpDir } from '../helpers/ort';

/** --check on the real SD1.5 graphs (synthesized weights): every style and target (GPU-only ops through the oracle here). */
const STYLES = ['sdpa_op17', 'vanilla_op17', 'dynamo_op18'] as const;
const dir = tmpDir('sdc-e2e-check-');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

test.each(STYLES.flatMap((s) => (['cpu', 'webgpu', 'cuda'] as const).map((t) => [s, t] as const)))('SD1.5 %s for %s passes --check 1', async (style, target) => {
  const out = path.join(dir, `${style}.${target}.onnx`);
  const r = await compileChecked(sd15Model(style), { output: out, target, check: 1 });
  expect(r.check!.passed).toBe(true);
  expect(r.check!.maxRel).toBeLessThan(1e-4);
  if (target === 'cpu') expect(r.loaded!.by).toBe('onnxruntime cpu');
  for (const f of [out, `${out}.data`]) fs.rmSync(f, { force: true });
}, 900000);
