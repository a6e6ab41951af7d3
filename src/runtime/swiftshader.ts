import * as fs from 'fs';
import * as os from 'os';

/** Where Debian's chromium package puts SwiftShader's Vulkan driver description. */
export const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

/**
 * Dawn's Vulkan backend writes "XDG_RUNTIME_DIR is invalid or not set" to the native stderr of every
 * process that opens it without one (a headless shell, CI); any folder quiets it (it is only read for a
 * display socket). Leaves one the caller set alone.
 */
export function quietVulkan(): void {
  if (!process.env.XDG_RUNTIME_DIR) process.env.XDG_RUNTIME_DIR = os.tmpdir();
}

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
  quietVulkan();
  return icd;
}

/** Is the Vulkan loader pointed at SwiftShader (so WebGPU numbers carry its known kernel faults)? */
export function usingSwiftShader(): boolean {
  return /swiftshader/i.test(process.env.VK_ICD_FILENAMES ?? '');
}

let chosen = false;

/**
 * The SwiftShader driver sdc may point the Vulkan loader at by itself when no hardware adapter starts:
 * where the environment names no Vulkan driver (one the user chose is theirs), does not forbid it
 * (SDC_SOFTWARE_ADAPTER=0: `npm test` does, to keep its WebGPU doors on the CPU fallback they check) and
 * chromium's is installed. Null otherwise.
 */
export function softwareAdapterFor(env: NodeJS.ProcessEnv, icd = SWIFTSHADER_ICD): string | null {
  return !env.VK_ICD_FILENAMES && env.SDC_SOFTWARE_ADAPTER !== '0' && fs.existsSync(icd) ? icd : null;
}

/** Use SwiftShader for every later WebGPU session of this process (none may have opened yet). */
export function chooseSoftwareAdapter(icd: string): void {
  useSwiftShader(icd);
  chosen = true;
}

/** Did sdc choose SwiftShader itself (providerUnavailable with `software`)? */
export function softwareAdapterChosen(): boolean {
  return chosen;
}

/** Is the WebGPU adapter an emulation on the CPU (its timings say nothing about a GPU)? */
export function softwareAdapter(): boolean {
  return /swiftshader|lvp_icd|lavapipe/i.test(process.env.VK_ICD_FILENAMES ?? '');
}

/**
 * Which WebGPU adapter this process's sessions open, in words for every line whose numbers depend on it.
 * onnxruntime-node does not report the adapter, so this is what the Vulkan loader is pointed at.
 */
export function adapterName(): string {
  const icd = process.env.VK_ICD_FILENAMES;
  if (usingSwiftShader()) return `SwiftShader, a software adapter${chosen ? ' sdc chose: no hardware adapter here' : ''}`;
  if (softwareAdapter()) return 'lavapipe, a software adapter';
  return icd ? `the Vulkan driver of VK_ICD_FILENAMES=${icd}` : 'the hardware adapter';
}

/** How to get a WebGPU adapter, for the lines that say none started (README: "WebGPU without a GPU"). */
export const ADAPTER_HINT = 'a GPU with Vulkan drivers, or without one Debian\'s chromium and libvulkan1 packages (SwiftShader, found by itself)';
