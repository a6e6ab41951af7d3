/**
 * Progress for long steps. The CLI shows a bar on a terminal, but only for a step that has already taken
 * a second (short compiles stay silent), and nothing at all when stderr is not a TTY.
 */
export interface Progress {
  step(name: string): void;
  /** Fraction of the current step, when it is measurable (bytes written). */
  update(done: number, total: number): void;
  done(): void;
}

export const silentProgress: Progress = { step() {}, update() {}, done() {} };

export function terminalProgress(stream: NodeJS.WriteStream = process.stderr, delayMs = 1000): Progress {
  if (!stream.isTTY) return silentProgress;
  let name = '';
  let started = 0;
  let shown = false;
  let last = 0;
  const draw = (text: string) => {
    stream.write(`\r\x1b[2K${text}`);
    shown = true;
  };
  return {
    step(n) {
      if (shown) stream.write('\n');
      shown = false;
      name = n;
      started = Date.now();
    },
    update(done, total) {
      const now = Date.now();
      if (now - started < delayMs || now - last < 100) return;
      last = now;
      const width = 30;
      const frac = total > 0 ? Math.min(1, done / total) : 0;
      const bar = '#'.repeat(Math.round(frac * width)).padEnd(width, '.');
      draw(`${name} [${bar}] ${(frac * 100).toFixed(0)}% ${fmtBytes(done)}/${fmtBytes(total)}`);
    },
    done() {
      if (shown) stream.write('\n');
      shown = false;
    },
  };
}

export function fmtBytes(n: number): string {
  if (n >= 1 << 30) return `${(n / (1 << 30)).toFixed(2)} GiB`;
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(1)} MiB`;
  if (n >= 1 << 10) return `${(n / (1 << 10)).toFixed(1)} KiB`;
  return `${n} B`;
}
