import * as fs from 'fs';
import * as path from 'path';
import { compile } from '../../src/compiler/compile';
import { sd15Model } from '../../fixtures/materialize';
import { relError, runModel, tmpDir, unetFeeds } from '../helpers/ort';

const STYLES = ['sdpa_op17', 'vanilla_op17', 'dynamo_op18'] as const;
const CLEANUP = ['fold-constants', 'simplify-shapes', 'eliminate-noops', 'eliminate-duplicates', 'eliminate-dead', 'fold-constants', 'simplify-shapes', 'eliminate-noops', 'eliminate-duplicates', 'eliminate-dead'];
const dir = tmpDir('sdc-e2e-');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

// Pass times are printed for the record; speed is measured in npm run bench, never asserted in a test.
test.each(STYLES)('SD1.5 %s: cleanup shrinks the graph, same outputs', async (style) => {
  const src = sd15Model(style);
  const out = path.join(dir, `${style}.onnx`);
  const report = compile(src, { output: out, passes: CLEANUP });
  const passMs = report.passes.reduce((s, p) => s + p.ms, 0);
  expect(report.nodesAfter).toBeLessThan(report.nodesBefore);
  const feeds = style === 'dynamo_op18' ? unetFeeds(2, 64, 77, 768) : unetFeeds(1, 32, 77, 768);
  const a = await runModel(src, feeds);
  const b = await runModel(out, feeds);
  const err = relError(a.out_sample, b.out_sample);
  console.log(`${style}: ${report.nodesBefore} -> ${report.nodesAfter} nodes, passes ${passMs.toFixed(0)} ms, rel err ${err.toExponential(2)}`);
  expect(err).toBeLessThan(1e-5);
  fs.rmSync(`${out}.data`);
}, 900000);
