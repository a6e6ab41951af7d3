/** The library entry: the one compile() every door uses, plus inspection and the runtime. */
export { compile, CompileOptions, CompileReport } from './compiler/compile';
export { inspect, formatInspect, InspectReport } from './compiler/inspect';
export { readModel } from './onnx/read';
export { writeModel } from './onnx/write';
export { load, SdcModel, LoadOptions } from './runtime';
export { compileAssets, sdcPlugin, AssetOptions } from './plugin/plugin';
export { autotune } from './autotune/autotune';
