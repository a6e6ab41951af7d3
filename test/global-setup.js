// Tests that spawn the CLI (bin/sdc) or a child process run dist/, which `npx jest` alone does not
// rebuild: build first whenever a source is newer than the build, so no test runs stale code.
const { execSync, spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const root = path.resolve(__dirname, '..');

function newest(dir) {
  let t = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : fs.statSync(p).mtimeMs);
  }
  return t;
}

module.exports = async () => {
  const built = path.join(root, 'dist', 'src', 'index.js');
  const stamp = fs.existsSync(built) ? fs.statSync(built).mtimeMs : 0;
  const sources = Math.max(...['src', 'plugin', 'bench', 'fixtures', 'fuzz'].map((d) => newest(path.join(root, d))));
  if (sources > stamp) {
    process.stderr.write('\njest: sources changed since the last build; building dist/ first\n');
    execSync('npm run build', { cwd: root, stdio: 'inherit' });
    fs.utimesSync(built, new Date(), new Date());
  }
  // tiny UNets compiled once per run, shared by the test files and workers (test/helpers/compiled.ts);
  // test/global-teardown.js removes it
  process.env.SDC_TEST_COMPILED = fs.mkdtempSync(path.join(os.tmpdir(), 'sdc-test-compiled-'));
  // The suites that hold real-provider WebGPU tests (test:full, test:e2e, test:browser) run them on
  // SwiftShader where there is no GPU: the Vulkan loader reads the real environment, so it is chosen
  // here, before any worker starts. `npm test` leaves WebGPU to a real adapter: on SwiftShader every
  // WebGPU call of a tiny UNet takes 10-20 s, and the doors that fall back to the CPU without one are
  // what the fast suite checks.
  const realProviderSuite = ['SDC_FULL', 'SDC_E2E', 'SDC_BROWSER'].some((k) => process.env[k]);
  if (realProviderSuite) require(path.join(root, 'dist', 'src', 'runtime', 'swiftshader.js')).useSwiftShader();
  // and forbids sdc to choose SwiftShader by itself (src/runtime/swiftshader.ts), which the CLI does where
  // no GPU is: a test that wants that spawns the CLI without this variable
  else process.env.SDC_SOFTWARE_ADAPTER ??= '0';
  // Probe the WebGPU provider once, in a child process (this one never opens a device), and hand the
  // answer to the test files (test/helpers/webgpu.ts): each worker copies process.env when it starts.
  const session = path.join(root, 'dist', 'src', 'runtime', 'session.js');
  const probe = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(session)}).webgpuUnavailable().then((why) => process.stdout.write(JSON.stringify(why)))`], { encoding: 'utf8', env: process.env });
  let why;
  try {
    why = JSON.parse(probe.stdout);
  } catch {
    why = `the probe failed: ${(probe.stderr || String(probe.error)).trim().split('\n').pop()}`;
  }
  process.env.SDC_WEBGPU_MISSING = why ?? '';
  if (why && realProviderSuite) {
    const required = process.env.SDC_REQUIRE_WEBGPU === '1';
    process.stderr.write(`\njest: the WebGPU provider cannot start here (${why}): the WebGPU tests ${required ? 'fail (SDC_REQUIRE_WEBGPU=1)' : 'are skipped'}; apt-get install -y chromium libvulkan1 to run them on SwiftShader\n`);
  }
};
