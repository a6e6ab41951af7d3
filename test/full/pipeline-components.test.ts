import * as fs from 'fs';
import { FUSED, REST_COMPONENTS, TARGET_MODES, compileComponent } from '../helpers/pipeline-components';
import { tmpDir } from '../helpers/ort';

/** The rest of test/pipeline-components.test.ts: the UNets and the components the other pipelines repeat. */
const dir = tmpDir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe.each(REST_COMPONENTS)('%s', (id) => {
  test.each(TARGET_MODES)('%s %s: fused, no Softmax left, equal to the original', async (target, mode) => {
    const r = await compileComponent(id, target, mode, dir);
    expect(r.ops['ai.onnx::Softmax']).toBeUndefined();
    expect(r.fused).toEqual(FUSED[id][target]);
    expect(r.vsOriginal).toBeLessThan(1e-4);
    expect(r.vsReference).toBeLessThan(1e-4);
  });
});
