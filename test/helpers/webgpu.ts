import { useSwiftShader } from '../../src/runtime/swiftshader';
import { webgpuUnavailable } from '../../src/runtime/session';

/**
 * The WebGPU provider for tests: SwiftShader where there is no GPU. `.ci/run` installs chromium (which
 * ships SwiftShader) and sets SDC_REQUIRE_WEBGPU=1, so there a missing adapter fails the tests; on a
 * developer machine without chromium they are skipped with a note.
 */
export async function webgpuForTests(): Promise<boolean> {
  useSwiftShader();
  const why = await webgpuUnavailable();
  if (!why) return true;
  if (process.env.SDC_REQUIRE_WEBGPU === '1') throw new Error(`SDC_REQUIRE_WEBGPU=1 but the WebGPU provider cannot start: ${why} (apt-get install -y chromium libvulkan1)`);
  process.stderr.write(`webgpu tests skipped: the WebGPU provider cannot start here (${why}); apt-get install -y chromium libvulkan1 to run them\n`);
  return false;
}
