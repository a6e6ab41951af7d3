/**
 * Whether onnxruntime's WebGPU provider starts here: probed once per run by test/global-setup.js
 * (on SwiftShader where there is no GPU, for test:full, test:e2e and test:browser; `npm test` uses only
 * a real adapter). Null when it starts, else the provider's reason.
 */
const probed = process.env.SDC_WEBGPU_MISSING;
if (probed === undefined) throw new Error("test/global-setup.js has not probed WebGPU: run the tests with this repository's jest.config.js");
const webgpuMissing: string | null = probed || null;

const required = process.env.SDC_REQUIRE_WEBGPU === '1';
const failure = () => new Error(`SDC_REQUIRE_WEBGPU=1 but the WebGPU provider cannot start: ${webgpuMissing} (apt-get install -y chromium libvulkan1)`);

/** A test that fails at once: what a WebGPU test is where an adapter is required and missing. */
const failing = Object.assign(
  (name: string, _fn?: unknown, timeout?: number) => test(name, () => { throw failure(); }, timeout),
  { each: (table: readonly unknown[]) => (name: string, _fn?: unknown, timeout?: number) => test.each(table as unknown[][])(name, () => { throw failure(); }, timeout) },
);

/**
 * `test` for a test that needs the WebGPU provider: the test itself where the provider starts; else a
 * visible skip (jest reports it as skipped, and global setup says why), or, under SDC_REQUIRE_WEBGPU=1
 * (`.ci/run`), a failure. Never a test that passes without asserting anything.
 */
export const gpuTest: jest.It = webgpuMissing === null ? test : required ? (failing as unknown as jest.It) : test.skip;

/** `test` for a test of what sdc says where no WebGPU adapter starts (`npm test` here); skipped where one does. */
export const noWebgpuTest: jest.It = webgpuMissing === null ? test.skip : test;
