import { shapesToString, ResolvedModelOptions } from './model-rules';
import { AssetCompiler, CompiledAsset, SdcModelAsset } from './asset-compiler';
import { readPipeline, Role } from '../pipeline/layout';
import { planDims, PipelineShape } from '../pipeline/dims';
import { SdcError } from '../ir/errors';
import * as path from 'path';

export interface PipelineAsset {
  className: string | null;
  shape: { height: number; width: number; batch: number; cfg: boolean };
  components: { name: string; role: Role; asset: CompiledAsset }[];
}

/**
 * A whole pipeline for a build step (an import of `sd15/model_index.json?sdc`): every component
 * through the cached AssetCompiler, each with its role's dims from one description of the images
 * (src/pipeline/dims.ts): specialized to them in reduce-overhead, checked at them otherwise.
 * `optionsFor` gives each component's options (the build step's rules, by the component's path).
 */
export async function compilePipelineAssets(modelIndex: string, shape: PipelineShape, optionsFor: (modelFile: string) => ResolvedModelOptions, compiler: AssetCompiler): Promise<PipelineAsset> {
  if (path.basename(modelIndex) !== 'model_index.json') throw new SdcError(modelIndex, 'a pipeline is imported by its model_index.json');
  const p = readPipeline(path.dirname(modelIndex));
  const plan = planDims(p, shape);
  const components: PipelineAsset['components'] = [];
  for (const c of p.components) {
    const options = optionsFor(c.modelFile);
    const dims = plan.components.get(c.name)!;
    if (options.mode !== 'default' && !dims.dims && !options.shapes) throw new SdcError(c.modelFile, `${options.mode} needs static dims, and ${dims.unresolved}; give this component shapes in a models rule`);
    const derived = dims.dims ? shapesToString(dims.dims) : null;
    const resolved = options.mode === 'default' ? options : { ...options, shapes: options.shapes ?? derived };
    components.push({ name: c.name, role: c.role, asset: await compiler.compile(c.modelFile, resolved, options.mode === 'default' ? derived : null) });
  }
  return { className: p.className, shape: { height: plan.height, width: plan.width, batch: plan.batch, cfg: plan.cfg }, components };
}

/**
 * What a bundled app gets from importing a pipeline's `model_index.json?sdc` (a `?sdc` import is typed
 * as one model by `sdc-compiler/client`: cast it, `sd as unknown as SdcPipelineAsset`).
 */
export interface SdcPipelineAsset {
  className: string | null;
  height: number;
  width: number;
  batch: number;
  cfg: boolean;
  components: Record<string, SdcModelAsset & { role: Role }>;
}
