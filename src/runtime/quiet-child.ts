import { execFile } from 'child_process';

/**
 * The script a child process runs: open `file` with `options` in onnxruntime-node, optionally run it
 * once on zero-filled inputs, and print `{"why": null | "the first line of the error"}` on stdout.
 * Self-contained (it requires only onnxruntime-node, by the path the parent resolved), so it runs the
 * same from dist/ and from the TypeScript sources under jest.
 */
const SCRIPT = `
const ort = require(process.argv[1]);
const spec = JSON.parse(process.argv[2]);
(async () => {
  let why = null;
  try {
    ort.env.logLevel = 'fatal';
    const s = await ort.InferenceSession.create(spec.file, { logSeverityLevel: 4, ...spec.options });
    try {
      if (spec.run) {
        const feeds = {};
        for (const [name, [type, dims]] of Object.entries(spec.run)) {
          const n = dims.reduce((a, b) => a * b, 1);
          const data = type === 'float16' ? new Uint16Array(n) : type === 'int64' ? new BigInt64Array(n) : new Float32Array(n);
          feeds[name] = new ort.Tensor(type, data, dims);
        }
        await s.run(feeds);
      }
    } finally {
      await s.release();
    }
  } catch (e) {
    why = String((e && e.message) || e).split('\\n')[0];
  }
  process.stdout.write(JSON.stringify({ why }));
})();
`;

/**
 * Open (and with `run`, run once) a model on a device provider in a child process, and say whether it
 * worked: null, or the provider's reason. Device providers write their own diagnostics to the process's
 * native stderr (Dawn: "XDG_RUNTIME_DIR is invalid", "Vulkan shaderUniform*ArrayDynamicIndexing
 * required" for each adapter it rejects), which no JavaScript setting silences: the child's stderr is
 * read and dropped, so sdc's stderr holds only sdc's lines. A child also leaves this process's Vulkan
 * loader untouched (it reads VK_ICD_FILENAMES once, at the first device session), so sdc can still
 * choose an adapter after asking.
 */
export function openInChild(
  file: string,
  options: Record<string, unknown>,
  run?: Record<string, [string, number[]]>,
  env: NodeJS.ProcessEnv = process.env,
): Promise<string | null> {
  const ortPath = require.resolve('onnxruntime-node');
  const spec = JSON.stringify({ file, options, run });
  return new Promise((resolve) => {
    execFile(process.execPath, ['-e', SCRIPT, ortPath, spec], { env, encoding: 'utf8', maxBuffer: 1 << 20 }, (err, stdout) => {
      try {
        resolve(JSON.parse(stdout).why);
      } catch {
        // the child died before answering (a native crash in the driver): that is the provider's answer
        resolve(`the provider's process ended without an answer (${err ? (err.signal ?? `exit ${err.code}`) : 'no output'})`);
      }
    });
  });
}

/**
 * onnxruntime's provider errors, as a person reads them: without the source location and the failed
 * assertion (`/onnxruntime_src/.../webgpu_context.cc:136 ... was false. Failed to get a WebGPU
 * adapter: No supported adapters` → `Failed to get a WebGPU adapter: No supported adapters`).
 */
export function providerReason(message: string): string {
  const line = message.split('\n')[0];
  const afterAssert = line.match(/ was false\. (.+)$/);
  if (afterAssert) return afterAssert[1];
  return line.replace(/^\/?\S*onnxruntime_src\/\S+:\d+ \S+ /, '');
}
