import * as fs from 'fs';

/** Where Debian's chromium package puts SwiftShader's Vulkan driver description. */
export const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

/**
 * On a machine without a GPU, point the Vulkan loader at SwiftShader (a CPU implementation of Vulkan)
 * so onnxruntime's WebGPU provider finds an adapter: for tests and CI, not for speed (~20 s per tiny
 * UNet call). Must run before the first WebGPU session of the process. Leaves a VK_ICD_FILENAMES the
 * caller set alone. Returns the driver file in use, or null when there is none.
 */
export function useSwiftShader(icd = SWIFTSHADER_ICD): string | null {
  if (process.env.VK_ICD_FILENAMES) return process.env.VK_ICD_FILENAMES;
  if (!fs.existsSync(icd)) return null;
  process.env.VK_ICD_FILENAMES = icd;
  // Dawn's Vulkan backend complains on stderr without one; any writable folder will do
  process.env.XDG_RUNTIME_DIR ??= '/tmp';
  return icd;
}

/** Is the Vulkan loader pointed at SwiftShader (so WebGPU numbers carry its known kernel faults)? */
export function usingSwiftShader(): boolean {
  return /swiftshader/i.test(process.env.VK_ICD_FILENAMES ?? '');
}
