import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

/** The package's client types, checked by tsc as an app that installed sdc sees them (two tsc runs: test:full). */
test('sdc/client types ?sdc imports for a TypeScript app that installed sdc', () => {
  const root = path.resolve(__dirname, '..', '..');
  const app = fs.mkdtempSync(path.join(os.tmpdir(), 'sdc-types-'));
  try {
    fs.mkdirSync(path.join(app, 'node_modules'));
    fs.symlinkSync(root, path.join(app, 'node_modules', 'sdc'));
    fs.symlinkSync(path.join(root, 'node_modules', '@types'), path.join(app, 'node_modules', '@types'));
    const write = (body: string) => fs.writeFileSync(path.join(app, 'app.ts'), `/// <reference types="sdc/client" />\n${body}\n`);
    const tsc = () => spawnSync(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '--noEmit', '--strict', '--module', 'esnext', '--moduleResolution', 'bundler', '--types', 'node', 'app.ts'], { cwd: app, encoding: 'utf8' });
    write("import unet from './unet.onnx?sdc';\nimport cpu from './unet.onnx?target=cpu&sdc';\nconst url: string = unet.url;\nconst data: string[] = cpu.externalData.map((d) => d.data);\nconsole.log(url, data, unet.inputs[0].name, unet.sessionOptions);");
    const ok = tsc();
    expect(ok.stdout + ok.stderr).toBe('');
    write("import unet from './unet.onnx?sdc';\nconst n: number = unet.url;\nconsole.log(n);");
    expect(tsc().stdout).toMatch(/Type 'string' is not assignable to type 'number'/);
  } finally {
    fs.rmSync(app, { recursive: true, force: true });
  }
});
