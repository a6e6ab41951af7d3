/**
 * Opt-in diagnostics, like TORCH_LOGS: SDC_LOG=passes,fusions,recompiles (comma-separated) writes each
 * topic's lines to stderr as it happens, from any door (CLI, library, runtime, plugin).
 */
export type LogTopic = 'passes' | 'fusions' | 'recompiles';

export function logEnabled(topic: LogTopic): boolean {
  return (process.env.SDC_LOG ?? '').split(',').map((s) => s.trim()).includes(topic);
}

export function log(topic: LogTopic, line: string): void {
  if (logEnabled(topic)) process.stderr.write(`sdc[${topic}]: ${line}\n`);
}
