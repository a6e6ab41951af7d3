// Types of `?sdc` imports (docs/plugin.md). In a TypeScript app: `/// <reference types="sdc/client" />`
// or `"types": ["sdc/client"]` in tsconfig.json.
declare module '*?sdc' {
  const model: import('sdc').SdcModelAsset;
  export default model;
}
declare module '*&sdc' {
  const model: import('sdc').SdcModelAsset;
  export default model;
}
