import * as fs from 'fs';
import { tmpDir } from '../helpers/ort';
import { REST_PAIRS, expectChecked, expectFp16 } from '../helpers/tiny';

const dir = tmpDir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/**
 * The tiny UNets × targets pairs `npm test` leaves out (it takes every model on cpu and every target on
 * the sdpa export: test/check.test.ts, test/fp16.test.ts): --check, and the fp16 conversion. Where the
 * WebGPU provider starts (SwiftShader in CI) the webgpu checks run on it.
 */
test.each(REST_PAIRS)('--check passes the real tiny %s compiled for %s, and says where it ran', (style, target) => expectChecked(style, target, dir), 600000);

test.each(REST_PAIRS)('tiny %s in fp16 for %s: float32 I/O, no Cast→Cast, at most 52%% of the weight bytes', (name, target) => expectFp16(name, target, dir));
