// Tests that spawn the CLI (bin/sdc) or a child process run dist/, which `npx jest` alone does not
// rebuild: build first whenever a source is newer than the build, so no test runs stale code.
const { execSync } = require('child_process');
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
  // Test files run in vm contexts whose process.env is a copy: the Vulkan loader reads the real
  // environment, so SwiftShader is chosen here, before any worker starts (webgpu.test.ts).
  require(path.join(root, 'dist', 'src', 'runtime', 'swiftshader.js')).useSwiftShader();
};
