// Types of `?sdc` imports (docs/plugin.md). In a TypeScript app: `/// <reference types="sdc-compiler/client" />`
// or `"types": ["sdc-compiler/client"]` in tsconfig.json.
//
// TypeScript's module patterns hold one `*`, so `*?sdc*` cannot be written: an import is matched by how
// its query ends. `?sdc` or `&sdc` last; or, after `?sdc&...`, the last option's value: a closed choice
// (target, mode, precision, cfg) or a number (shape, height, width, batch, check end in a digit). A
// pattern only types a specifier that resolves to no file, so the digit endings give this type to any
// unresolvable import ending in a digit in an app that references these types; nothing else changes.
declare module '*?sdc' {
  const model: import('sdc-compiler').SdcModelAsset;
  export default model;
}
declare module '*&sdc' {
  const model: import('sdc-compiler').SdcModelAsset;
  export default model;
}
declare module '*=cpu' {
  const model: import('sdc-compiler').SdcModelAsset;
  export default model;
}
declare module '*=webgpu' {
  const model: import('sdc-compiler').SdcModelAsset;
  export default model;
}
declare module '*=cuda' {
  const model: import('sdc-compiler').SdcModelAsset;
  export default model;
}
declare module '*=default' {
  const model: import('sdc-compiler').SdcModelAsset;
  export default model;
}
declare module '*=reduce-overhead' {
  const model: import('sdc-compiler').SdcModelAsset;
  export default model;
}
declare module '*=max-autotune' {
  const model: import('sdc-compiler').SdcModelAsset;
  export default model;
}
declare module '*=fp16' {
  const model: import('sdc-compiler').SdcModelAsset;
  export default model;
}
declare module '*=fp32' {
  const model: import('sdc-compiler').SdcModelAsset;
  export default model;
}
declare module '*=true' {
  const model: import('sdc-compiler').SdcModelAsset;
  export default model;
}
declare module '*=false' {
  const model: import('sdc-compiler').SdcModelAsset;
  export default model;
}
declare module '*0' {
  const model: import('sdc-compiler').SdcModelAsset;
  export default model;
}
declare module '*1' {
  const model: import('sdc-compiler').SdcModelAsset;
  export default model;
}
declare module '*2' {
  const model: import('sdc-compiler').SdcModelAsset;
  export default model;
}
declare module '*3' {
  const model: import('sdc-compiler').SdcModelAsset;
  export default model;
}
declare module '*4' {
  const model: import('sdc-compiler').SdcModelAsset;
  export default model;
}
declare module '*5' {
  const model: import('sdc-compiler').SdcModelAsset;
  export default model;
}
declare module '*6' {
  const model: import('sdc-compiler').SdcModelAsset;
  export default model;
}
declare module '*7' {
  const model: import('sdc-compiler').SdcModelAsset;
  export default model;
}
declare module '*8' {
  const model: import('sdc-compiler').SdcModelAsset;
  export default model;
}
declare module '*9' {
  const model: import('sdc-compiler').SdcModelAsset;
  export default model;
}
