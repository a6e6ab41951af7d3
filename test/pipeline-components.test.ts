import * as fs from 'fs';
import { FAST_COMPONENTS, TARGET_MODES, expectComponent } from './helpers/pipeline-components';
import { tmpDir } from './helpers/ort';

/**
 * Every kind of pipeline component the tiny UNets do not cover (CLIP text encoders with quick GELU and
 * GELU, both VAE halves) compiled per target: every attention site fused (no Softmax left), the fused
 * sites as expected, and the output equal to PyTorch's and to the original's at dims other than the
 * traced ones. The other components (UNets, ControlNet, the same kinds in the other pipelines) are in
 * test/full/pipeline-components.test.ts.
 */
const dir = tmpDir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe.each(FAST_COMPONENTS)('%s', (id) => {
  test.each(TARGET_MODES)('%s %s: fused, no Softmax left, equal to the original', async (target, mode) => {
    await expectComponent(id, target, mode, dir);
  });
});
