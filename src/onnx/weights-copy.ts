import * as fs from 'fs';
import * as path from 'path';
import { MessageChannel, Worker, receiveMessageOnPort } from 'worker_threads';

/**
 * A kernel-side copy of a weights file, made on another thread while this one runs the passes: when the
 * output keeps most of the source's tensors in place, the writer starts from it (write.ts `baseFile`), so
 * the copy, a compile's largest cost, overlaps the rest of the work instead of following it.
 */
export interface WeightsCopy {
  /** The file being copied (resolved). */
  readonly source: string;
  /**
   * Wait for the copy and take it: it is renamed to `dest`, which then holds the source's bytes, with the
   * permissions a new file gets. Throws the copy's error (ENOSPC, EACCES) as an fs error would be.
   */
  take(dest: string): void;
  /** Remove the copy, finished or not (an unfinished one stops costing disk when its thread ends). */
  discard(): void;
}

/** Copy `source` to the new file `file` in the kernel, with the permissions a newly created file gets (not the source's). */
export function copyAsNew(source: string, file: string): void {
  const fd = fs.openSync(file, 'wx');
  const mode = fs.fstatSync(fd).mode;
  fs.closeSync(fd);
  // a reflink clone where the filesystem has them (btrfs, XFS), else a copy in the kernel
  fs.copyFileSync(source, file, fs.constants.COPYFILE_FICLONE);
  fs.chmodSync(file, mode);
}

/**
 * Runs in the worker: copyAsNew (repeated here: an eval'd script cannot import it, and jest runs the
 * TypeScript sources), skipped when already discarded. state: 0 copying, 1 done, 2 discarded; whoever
 * moves it last removes the file of a discarded copy.
 */
const SCRIPT = `
const fs = require('fs');
const { workerData } = require('worker_threads');
const { source, file, shared, port } = workerData;
const state = new Int32Array(shared);
let error = null;
try {
  if (Atomics.load(state, 0) === 0) {
    const fd = fs.openSync(file, 'wx');
    const mode = fs.fstatSync(fd).mode;
    fs.closeSync(fd);
    fs.copyFileSync(source, file, fs.constants.COPYFILE_FICLONE);
    fs.chmodSync(file, mode);
  }
} catch (e) {
  error = { code: e.code, message: e.message };
}
port.postMessage(error);
if (Atomics.compareExchange(state, 0, 0, 1) === 2) fs.rmSync(file, { force: true });
Atomics.notify(state, 0);
`;

const COPYING = 0;
const DISCARDED = 2;

/** Start copying `source` to a new file in `folder` (which must exist and be on the output's filesystem). */
export function startWeightsCopy(source: string, folder: string): WeightsCopy {
  const file = path.join(folder, 'weights.copy');
  const shared = new SharedArrayBuffer(4);
  const state = new Int32Array(shared);
  const { port1, port2 } = new MessageChannel();
  const worker = new Worker(SCRIPT, { eval: true, workerData: { source, file, shared, port: port2 }, transferList: [port2] });
  // a compile that ends (or fails) before the writer asks must not wait for the copy to exit
  worker.unref();
  port1.unref();
  let taken = false;
  return {
    source: path.resolve(source),
    take(dest: string) {
      Atomics.wait(state, 0, COPYING);
      const error = receiveMessageOnPort(port1)?.message as { code?: string; message: string } | null | undefined;
      port1.close();
      if (error) throw Object.assign(new Error(error.message), { code: error.code });
      fs.renameSync(file, dest);
      taken = true;
    },
    discard() {
      port1.close();
      if (taken) return;
      // the name goes now (a copy still running writes on into the unlinked file, whose blocks return when
      // it ends); a file the worker has yet to create it removes itself, seeing the state
      Atomics.compareExchange(state, 0, COPYING, DISCARDED);
      fs.rmSync(file, { force: true });
    },
  };
}
