import * as fs from 'fs';
import * as path from 'path';

/** sdc's version from package.json, found from the sources (tests) or from dist/ (installed). */
function findVersion(): string {
  for (let dir = __dirname; dir !== path.dirname(dir); dir = path.dirname(dir)) {
    const p = path.join(dir, 'package.json');
    if (fs.existsSync(p)) return JSON.parse(fs.readFileSync(p, 'utf8')).version;
  }
  return '0.0.0';
}

export const SDC_VERSION: string = findVersion();
