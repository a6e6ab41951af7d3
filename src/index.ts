/** The library entry (`import … from 'sdc'`): the one compile() every door uses, checking, the runtime. */
export { compile, compileStaged, CompileOptions, CompileReport, ShapeSpec, StagedOutput } from './compiler/compile';
export { inspect, formatInspect, InspectReport } from './compiler/inspect';
export { PassReport } from './compiler/pipeline';
export { SdcError } from './ir/errors';
export { readModel } from './onnx/read';
export { writeModel } from './onnx/write';
export { Explanation, Mode, MODES } from './rewrite/pass';
export { TargetName, TARGETS } from './targets';
export { load, SdcModel, LoadOptions, RuntimeStats } from './runtime';
export { webCaptureOptions, webSessionOptions } from './runtime/session';
export { profilePlacement, placementFromTrace, formatPlacement, Placement } from './runtime/placement';
export { recommendedSession, RecommendedSession, ProviderLayout } from './targets/session-options';
export { compileChecked, checkOutput, CheckedCompileOptions, CheckedReport, CheckOptions, CheckReport, LoadReport } from './verify/check';
export { autotune, AutotuneResult } from './autotune/autotune';
export { compileAssets, AssetOptions, AssetResult } from './assets/compile-assets';
export { AssetCompiler, AssetInfo, CompiledAsset, defaultAssetCacheDir, SdcModelAsset } from './assets/asset-compiler';
export { ModelOptions, ModelRule, ResolvedModelOptions, optionsFor, validateModelOptions } from './assets/model-rules';
