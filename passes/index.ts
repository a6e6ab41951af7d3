import { Pass } from '../compiler/pass';

/** Every pass sdc has, by name. The pipeline (compiler/pipeline.ts) decides which run in which mode. */
export const ALL_PASSES: Pass[] = [];

export function passByName(name: string): Pass | undefined {
  return ALL_PASSES.find((p) => p.name === name);
}
