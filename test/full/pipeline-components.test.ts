import * as fs from 'fs';
import { REST_COMPONENTS, TARGET_MODES, expectComponent } from '../helpers/pipeline-components';
import { tmpDir } from '../helpers/ort';

/** The rest of test/pipeline-components.test.ts: the UNets and the components the other pipelines repeat. */
const dir = tmpDir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe.each(REST_COMPONENTS)('%s', (id) => {
  test.each(TARGET_MODES)('%s %s: fused, no Softmax left, equal to the original', async (target, mode) => {
    await expectComponent(id, target, mode, dir);
  });
});
