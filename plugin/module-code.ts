import { AssetInfo } from '../src/index';

/**
 * The module an `?sdc` import becomes. `urlExpr` is a JavaScript expression for the compiled model's URL
 * in the bundler's own terms (Rollup's file URL, webpack's public path, ...); the weights file sits
 * beside the model, so its URL is the model's with the file name replaced.
 *
 *   import unet from './unet.onnx?sdc';
 *   const session = await ort.InferenceSession.create(unet.url, { ...unet.sessionOptions, externalData: unet.externalData });
 */
export function moduleCode(urlExpr: string, dataFile: string | null, dataLocation: string | null, info: AssetInfo): string {
  const lines = [`const url = ${urlExpr};`];
  if (dataFile && dataLocation) {
    lines.push(
      `const externalData = [{ path: ${JSON.stringify(dataLocation)}, data: url.slice(0, url.lastIndexOf('/') + 1) + ${JSON.stringify(dataFile)} }];`,
    );
  } else {
    lines.push('const externalData = [];');
  }
  const fields = {
    inputs: info.inputs,
    outputs: info.outputs,
    mode: info.mode,
    target: info.target,
    precision: info.precision,
    sdcVersion: info.sdcVersion,
    sessionOptions: info.sessionOptions,
    captureOptions: info.captureOptions,
    reasons: info.reasons,
    gpuFeatures: info.gpuFeatures,
  };
  lines.push(`const facts = ${JSON.stringify(fields)};`);
  lines.push('export default { url, externalData, ...facts };');
  return `${lines.join('\n')}\n`;
}
