import * as fs from 'fs';
import * as path from 'path';
import { OP_RECORDS } from '../src/ops';
import { REGISTRY, pipelineSteps, renderFusionTable, siteColumns } from '../src/passes';
import { Rule } from '../src/rewrite/rule';
import { Target, renderTargetTable } from '../src/targets';

const ROOT = path.resolve(__dirname, '..');
const doc = fs.readFileSync(path.join(ROOT, 'docs', 'architecture.md'), 'utf8');
const section = doc.slice(doc.indexOf('## Adding a fusion'), doc.indexOf('## Adding a target'));

/** The repository paths a section names in backticks (`src/...`, `test/...`), with <name> kept as written. */
const namedPaths = (text: string) => [...new Set([...text.matchAll(/`((?:src|test)\/[^`\s]+)`/g)].map((m) => m[1]))];

test('"Adding a fusion" names a rule file, the registry, an op record and one test file, and nothing else to edit', () => {
  expect(namedPaths(section).sort()).toEqual([
    'src/ir/dims.ts', 'src/ir/query.ts', // shared helpers the rule reads (not edited)
    'src/ops/<family>.ts', 'src/ops/index.ts',
    'src/passes/registry.ts',
    'src/rules/<name>.ts',
    'test/rules/<name>.test.ts',
  ]);
});

/** Walk the checklist for one existing rule: each step's artifact is there, and what is derived follows. */
test.each(['bias-add', 'skip-layer-norm', 'group-norm'])('the checklist holds for rule %s', (name) => {
  // 1. the rule file exports a rule of that name
  const mod = require(path.join(ROOT, 'src', 'rules', `${name}.ts`)) as Record<string, Rule>;
  const rule = Object.values(mod).find((r) => r && typeof r === 'object' && 'pattern' in r && r.name === name);
  expect(rule).toBeDefined();
  // 2. one registry entry runs it
  const entries = REGISTRY.filter((e) => (e.pass as { rules?: Rule[] }).rules?.includes(rule!) ?? false);
  const holders = REGISTRY.filter((e) => e.pass.emits && e.pass.sites?.some((s) => s.counter === rule!.counter));
  expect(holders.length).toBe(1);
  expect(entries.length).toBeLessThanOrEqual(1);
  const pass = holders[0].pass;
  // 3. every op it emits has a record
  for (const t of ['cpu', 'webgpu', 'cuda'] as const) {
    for (const op of rule!.emits({ target: new Target(t), opset: 17 } as never)) expect(OP_RECORDS.map((r) => r.op)).toContain(op);
  }
  // 4. its test file
  expect(fs.existsSync(path.join(ROOT, 'test', 'rules', `${name}.test.ts`))).toBe(true);
  // derived, with no further edit: a pipeline runs it, its column is counted, the docs' tables show it
  const inSomePipeline = ['cpu', 'webgpu', 'cuda'].some((t) => !pass.appliesTo?.(new Target(t as 'cpu')) && pipelineSteps('default').includes(pass.name));
  expect(inSomePipeline).toBe(true);
  expect(siteColumns().map((c) => c.counter)).toContain(rule!.counter);
  expect(renderFusionTable()).toContain(`| ${pass.name} |`);
  for (const op of rule!.emits({ target: new Target('cuda'), opset: 17 } as never)) {
    if (!op.startsWith('ai.onnx::')) expect(renderTargetTable()).toContain(`| ${op} |`);
  }
});
