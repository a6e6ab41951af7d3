export { renderFusionTable } from './registry';
export { ALL_PASSES, passByName, pipelineSteps, cleanupGroup, REGISTRY, RegistryEntry, stageOrder, siteColumns, fusedSiteCounts } from './registry';
