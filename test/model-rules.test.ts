import { globToRegExp, optionsFor, shapesToString } from '../src/assets/model-rules';
import { isSdcImport, parseSdcImport } from '../plugin/import-query';

test('globs: * stays in a folder, ** crosses folders (and may be none), ? is one character', () => {
  expect(globToRegExp('*.onnx').test('unet.onnx')).toBe(true);
  expect(globToRegExp('*.onnx').test('a/unet.onnx')).toBe(false);
  expect(globToRegExp('models/**/*.onnx').test('models/unet.onnx')).toBe(true);
  expect(globToRegExp('models/**/*.onnx').test('models/sd/v1/unet.onnx')).toBe(true);
  expect(globToRegExp('unet_v?.onnx').test('unet_v2.onnx')).toBe(true);
  expect(globToRegExp('unet_v?.onnx').test('unet_v10.onnx')).toBe(false);
  expect(globToRegExp('a+b(1).onnx').test('a+b(1).onnx')).toBe(true);
});

test('options: defaults, then every matching rule in order, then the import query', () => {
  const rules = [
    { include: '*.onnx', mode: 'reduce-overhead' as const },
    { include: 'vae/*', target: 'webgpu' as const, shapes: { latent: [1, 4, 64, 64] } },
    { include: [/decoder/, 'nothing'], precision: 'fp16' as const },
  ];
  expect(optionsFor('unet.onnx', rules, { target: 'cpu' })).toEqual({ mode: 'reduce-overhead', target: 'cpu', precision: 'fp32', shapes: null, check: 0 });
  expect(optionsFor('vae/decoder.onnx', rules)).toEqual({ mode: 'reduce-overhead', target: 'webgpu', precision: 'fp16', shapes: 'latent=1x4x64x64', check: 0 });
  expect(optionsFor('vae/decoder.onnx', rules, {}, { mode: 'default', precision: undefined }).mode).toBe('default');
  expect(optionsFor('vae/decoder.onnx', rules, {}, { mode: 'default', precision: undefined }).precision).toBe('fp16');
  expect(shapesToString(new Map([['x', [2, 3]]]))).toBe('x=2x3');
});

test('import queries: ?sdc anywhere in the query, options read, unknown keys refused', () => {
  expect(isSdcImport('/m/unet.onnx?sdc')).toBe(true);
  expect(isSdcImport('/m/unet.onnx?target=webgpu&sdc')).toBe(true);
  expect(isSdcImport('/m/unet.onnx?sdcx')).toBe(false);
  expect(isSdcImport('/m/unet.onnx')).toBe(false);
  const q = parseSdcImport('/m/unet.onnx?sdc&mode=reduce-overhead&target=webgpu&shape=sample=1x4x8x8,timestep=1&precision=fp16');
  expect(q).toEqual({ file: '/m/unet.onnx', query: 'sdc&mode=reduce-overhead&target=webgpu&shape=sample=1x4x8x8,timestep=1&precision=fp16', options: { mode: 'reduce-overhead', target: 'webgpu', shapes: 'sample=1x4x8x8,timestep=1', precision: 'fp16' }, pipeline: null });
  expect(() => parseSdcImport('/m/unet.onnx?sdc&taget=webgpu')).toThrow("/m/unet.onnx: unknown option 'taget'");
  expect(() => parseSdcImport('/m/unet.onnx?sdc&precision=int8')).toThrow("/m/unet.onnx: unknown precision 'int8'");
  expect(() => parseSdcImport('/m/unet.onnx?sdc&check=-1')).toThrow(/check must be a whole number/);
});
