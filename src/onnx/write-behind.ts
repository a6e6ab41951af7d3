import { MessageChannel, Worker, receiveMessageOnPort } from 'worker_threads';

/**
 * Writes of a data file done by another thread, so that computing the next piece (reading a weight,
 * transposing a kernel, converting to fp16) overlaps the kernel's write of this one: on a disk behind
 * with its writeback, a write blocks for as long as that computing takes. The writer fills a slot of a
 * small shared ring (a few MB, never a tensor) and hands it over; writes go to disjoint ranges, so their
 * order does not matter. The first error (ENOSPC) is thrown by the writer's next call.
 */
export class WriteBehind {
  private readonly slots: Buffer[];
  /** [0] pieces handed over, [1] pieces written, [2] 1 after an error, [3] 1 when told to stop, [4] 1 once stopped. */
  private readonly state: Int32Array;
  /** Per slot: [offset in the file, length]. */
  private readonly meta: Float64Array;
  private readonly port: MessageChannel['port1'];
  private readonly worker: Worker;
  private submitted = 0;

  constructor(fd: number, readonly slotBytes = 4 << 20, slotCount = 3) {
    const data = new SharedArrayBuffer(slotBytes * slotCount);
    this.slots = Array.from({ length: slotCount }, (_, i) => Buffer.from(data, i * slotBytes, slotBytes));
    const control = new SharedArrayBuffer(20);
    const meta = new SharedArrayBuffer(16 * slotCount);
    this.state = new Int32Array(control);
    this.meta = new Float64Array(meta);
    const { port1, port2 } = new MessageChannel();
    this.port = port1;
    this.worker = new Worker(SCRIPT, { eval: true, workerData: { fd, data, control, meta, slotBytes, slotCount, port: port2 }, transferList: [port2] });
    this.worker.unref();
    port1.unref();
  }

  /** Write `bytes` at `at` in the file (copied into the ring first: the caller may reuse them at once). */
  write(bytes: Uint8Array, at: number): void {
    for (let done = 0; done < bytes.byteLength; ) {
      const n = Math.min(this.slotBytes, bytes.byteLength - done);
      const i = this.claim();
      this.slots[i].set(bytes.subarray(done, done + n));
      this.handOver(i, at + done, n);
      done += n;
    }
  }

  /** Fill a free slot with `fill(slot)` (which returns the bytes it put there) and write them at `at`. */
  writeFrom(fill: (slot: Buffer) => number, at: number): number {
    const i = this.claim();
    const n = fill(this.slots[i]);
    this.handOver(i, at, n);
    return n;
  }

  /** Wait for every write handed over; throws the first error. The thread ends either way. */
  finish(): void {
    try {
      for (let written = Atomics.load(this.state, 1); written < this.submitted; written = Atomics.load(this.state, 1)) {
        this.raise();
        Atomics.wait(this.state, 1, written, 1000);
      }
      this.raise();
    } finally {
      this.stop();
    }
  }

  /**
   * End the thread, dropping writes not yet started (after an error of the caller's own), and wait until
   * it has: the caller closes the file next, and a write to a closed descriptor could land in whatever
   * file reuses its number.
   */
  stop(): void {
    Atomics.store(this.state, 3, 1);
    Atomics.notify(this.state, 0);
    while (Atomics.load(this.state, 4) !== 1) Atomics.wait(this.state, 4, 0, 1000);
    this.port.close();
  }

  /** The index of a free slot, once the thread has written what it held. */
  private claim(): number {
    this.raise();
    for (let written = Atomics.load(this.state, 1); this.submitted - written >= this.slots.length; written = Atomics.load(this.state, 1)) {
      Atomics.wait(this.state, 1, written, 1000);
      this.raise();
    }
    return this.submitted % this.slots.length;
  }

  private handOver(i: number, at: number, length: number): void {
    this.meta[2 * i] = at;
    this.meta[2 * i + 1] = length;
    this.submitted++;
    Atomics.store(this.state, 0, this.submitted);
    Atomics.notify(this.state, 0);
  }

  private raise(): void {
    if (Atomics.load(this.state, 2) !== 1) {
      if (Atomics.load(this.state, 4) === 1 && Atomics.load(this.state, 3) !== 1) throw new Error('the thread writing the data file ended before its writes were done');
      return;
    }
    const e = receiveMessageOnPort(this.port)?.message as { code?: string; message: string } | undefined;
    throw Object.assign(new Error(e?.message ?? 'a write of the data file failed'), { code: e?.code });
  }
}

/** The writing thread: write each slot handed over, in turn, until told to stop or a write fails. */
const SCRIPT = `
const fs = require('fs');
const { workerData } = require('worker_threads');
const { fd, data, control, meta, slotBytes, slotCount, port } = workerData;
const state = new Int32Array(control);
const where = new Float64Array(meta);
const slots = Array.from({ length: slotCount }, (_, i) => Buffer.from(data, i * slotBytes, slotBytes));
let written = 0;
try {
for (;;) {
  if (Atomics.load(state, 3) === 1) break;
  const handed = Atomics.load(state, 0);
  if (written === handed) {
    Atomics.wait(state, 0, handed, 1000);
    continue;
  }
  const i = written % slotCount;
  const at = where[2 * i];
  const length = where[2 * i + 1];
  try {
    for (let done = 0; done < length; ) done += fs.writeSync(fd, slots[i], done, length - done, at + done);
  } catch (e) {
    port.postMessage({ code: e.code, message: e.message });
    Atomics.store(state, 2, 1);
    Atomics.notify(state, 1);
    break;
  }
  written++;
  Atomics.store(state, 1, written);
  Atomics.notify(state, 1);
}
} finally {
  Atomics.store(state, 4, 1);
  Atomics.notify(state, 4);
  Atomics.notify(state, 1);
}
`;
