import { createHash } from 'crypto';
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

let build: string | null = null;

/**
 * A hash of the code that compiles (every source file under sdc's src/, as .ts or as built .js): the
 * caches key on it beside the version, so a model compiled by other code — a changed pass during
 * development, a patched install — is never served as this code's output.
 */
export function sdcBuildHash(): string {
  if (build) return build;
  const root = path.dirname(__dirname);
  const h = createHash('sha256');
  const walk = (dir: string): void => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const f = path.join(dir, e.name);
      if (e.isDirectory()) walk(f);
      else if (/\.(js|ts|proto)$/.test(e.name) && !e.name.endsWith('.d.ts')) h.update(`${path.relative(root, f)}\0`).update(fs.readFileSync(f));
    }
  };
  walk(root);
  build = h.digest('hex').slice(0, 16);
  return build;
}
