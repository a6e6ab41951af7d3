/**
 * Tests run the TypeScript sources through swc (fast, no type check); `npm test` type-checks with tsc first.
 * `npm test` is the fast suite: every test/ file outside full/, e2e/ and browser/. test/full/ (the slow
 * checks: every conformance case, the real WebGPU provider, the GPU benchmark, the bundlers) runs under
 * SDC_FULL=1 (`npm run test:full`), test/e2e/ under SDC_E2E=1, test/browser/ under SDC_BROWSER=1.
 */
const os = require('os');

const ignored = [['SDC_FULL', '/test/full/'], ['SDC_E2E', '/test/e2e/'], ['SDC_BROWSER', '/test/browser/']];

module.exports = {
  testEnvironment: '<rootDir>/test/environment.js',
  globalSetup: '<rootDir>/test/global-setup.js',
  globalTeardown: '<rootDir>/test/global-teardown.js',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  testPathIgnorePatterns: ignored.filter(([env]) => !process.env[env]).map(([, dir]) => dir),
  transform: { '^.+\\.ts$': ['@swc/jest', { jsc: { target: 'es2022' } }] },
  // Jest runs every module in a vm context, where each read of a global (Math, Map, Float32Array...) goes
  // through the context's interceptors: sdc's passes, the reader and calibration ran 5-50x slower than
  // under plain node (jestjs/jest#5163, nodejs/node#31658). Jest passes these in as module-wrapper
  // parameters instead, so they are local reads. Only built-ins nothing reassigns; the typed arrays are
  // the host's, as test/environment.js installs them.
  sandboxInjectedGlobals: [
    'Math', 'Number', 'Object', 'Array', 'Map', 'Set', 'WeakMap', 'String', 'JSON', 'BigInt', 'Symbol', 'Boolean',
    'Promise', 'Reflect', 'Error', 'TypeError', 'RangeError', 'Buffer', 'ArrayBuffer', 'DataView', 'Float32Array',
    'Float64Array', 'Int8Array', 'Int16Array', 'Int32Array', 'Uint8Array', 'Uint16Array', 'Uint32Array', 'BigInt64Array',
    'BigUint64Array',
  ],
  // jest's default is one worker per core but one: a single worker on 2 cores, which leaves a core idle
  // while sdc's passes (single-threaded JavaScript) run. Two workers ran the heaviest files 1.4-1.9x
  // faster on the 2-core machine the suite's budget is measured on.
  maxWorkers: Math.max(2, os.availableParallelism() - 1),
  testTimeout: 120000,
};
