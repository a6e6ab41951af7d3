export { renderFusionTable } from './registry';
export { ALL_PASSES, passByName, pipelineSteps, cleanupGroup, REGISTRY, RegistryEntry, Stage, Step, stageOrder, siteColumns, fusedSiteCounts, SiteColumn } from './registry';
