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
  return `${[...assetLines('', urlExpr, dataFile, dataLocation, info), 'export default { url, externalData, ...facts };'].join('\n')}\n`;
}

/** One model's object as `const url${suffix}`, `externalData${suffix}`, `facts${suffix}`. */
function assetLines(suffix: string, urlExpr: string, dataFile: string | null, dataLocation: string | null, info: AssetInfo): string[] {
  const lines = [`const url${suffix} = ${urlExpr};`];
  if (dataFile && dataLocation) {
    lines.push(
      `const externalData${suffix} = [{ path: ${JSON.stringify(dataLocation)}, data: url${suffix}.slice(0, url${suffix}.lastIndexOf('/') + 1) + ${JSON.stringify(dataFile)} }];`,
    );
  } else {
    lines.push(`const externalData${suffix} = [];`);
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
  lines.push(`const facts${suffix} = ${JSON.stringify(fields)};`);
  return lines;
}

/**
 * The module a pipeline import (`sd15/model_index.json?sdc`) becomes: per component the object a model
 * import gives, and the images the pipeline was compiled for.
 *
 *   import sd from './sd15/model_index.json?sdc&target=webgpu&mode=reduce-overhead&height=512&width=512';
 *   const unet = await ort.InferenceSession.create(sd.components.unet.url, { ...sd.components.unet.sessionOptions, externalData: sd.components.unet.externalData });
 */
export function pipelineModuleCode(meta: { className: string | null; shape: Record<string, unknown> }, parts: { name: string; role: string; urlExpr: string; dataFile: string | null; dataLocation: string | null; info: AssetInfo }[]): string {
  const lines: string[] = [];
  parts.forEach((p, i) => lines.push(...assetLines(`_${i}`, p.urlExpr, p.dataFile, p.dataLocation, p.info)));
  const entries = parts.map((p, i) => `${JSON.stringify(p.name)}: { role: ${JSON.stringify(p.role)}, url: url_${i}, externalData: externalData_${i}, ...facts_${i} }`);
  lines.push(`export default { className: ${JSON.stringify(meta.className)}, ...${JSON.stringify(meta.shape)}, components: { ${entries.join(', ')} } };`);
  return `${lines.join('\n')}\n`;
}
