// The run's shared scratch folder (test/helpers/compiled.ts), made by test/global-setup.js.
const fs = require('fs');

module.exports = async () => {
  if (process.env.SDC_TEST_COMPILED) fs.rmSync(process.env.SDC_TEST_COMPILED, { recursive: true, force: true });
};
