import * as fs from 'fs';
import * as path from 'path';
import { renderFusionTable } from '../src/passes';
import { renderTargetTable } from '../src/targets';

/**
 * `npm run docs`: rewrites the generated tables of docs/targets.md (between `<!-- generated: NAME -->`
 * and `<!-- /generated -->`) from the op records and the registry, so the page cannot drift from the
 * code (test/targets.test.ts fails when it has).
 */
const GENERATED: Record<string, () => string> = { kernels: renderTargetTable, fusions: renderFusionTable };

export function renderDoc(text: string): string {
  return text.replace(/(<!-- generated: (\w+) -->)[\s\S]*?(<!-- \/generated -->)/g, (_all, open: string, name: string, close: string) => {
    const render = GENERATED[name];
    if (!render) throw new Error(`docs: no generated table called '${name}'`);
    return `${open}\n${render()}\n${close}`;
  });
}

if (require.main === module) {
  const file = path.join(__dirname, '..', '..', 'docs', 'targets.md');
  const before = fs.readFileSync(file, 'utf8');
  const after = renderDoc(before);
  fs.writeFileSync(file, after);
  process.stdout.write(after === before ? 'docs/targets.md: up to date\n' : 'docs/targets.md: tables rewritten\n');
}
