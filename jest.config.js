/** Tests run the TypeScript sources through swc (fast, no type check); `npm test` type-checks with tsc first. */
module.exports = {
  testEnvironment: '<rootDir>/test/environment.js',
  globalSetup: '<rootDir>/test/global-setup.js',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  testPathIgnorePatterns: [...(process.env.SDC_E2E ? [] : ['/test/e2e/']), ...(process.env.SDC_BROWSER ? [] : ['/test/browser/'])],
  transform: { '^.+\\.ts$': ['@swc/jest', { jsc: { target: 'es2022' } }] },
  testTimeout: 120000,
};
