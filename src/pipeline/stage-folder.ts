import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { SdcError } from '../ir/errors';
import { realPath } from '../onnx/write';
import { alive } from '../compiler/compile';

/**
 * Writing a whole output folder safely: built in a private folder beside its destination and moved into
 * place by rename, so a reader sees the old folder or the new one, never a mix, and a failure leaves the
 * destination as it was. Used by every door that writes a folder (a compiled pipeline, a Triton model
 * repository).
 */

/** Where `p` would land, with links resolved (the folder may not exist yet). */
export function resolvedTarget(p: string): string {
  return path.join(realPath(path.dirname(p)), path.basename(p));
}

/** `child` is `parent` or inside it (both resolved). */
export function inside(child: string, parent: string): boolean {
  const rel = path.relative(parent, child);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/**
 * The first file under `root` (relative) that `ours` does not claim, or null when it claims every one
 * (or the folder is empty): replacing the folder then loses nothing of anybody else's. A link, device or
 * FIFO is never ours.
 */
export function firstForeignFile(root: string, ours: (rel: string) => boolean): string | null {
  const walk = (rel: string): string | null => {
    for (const e of fs.readdirSync(path.join(root, rel), { withFileTypes: true })) {
      const r = rel ? path.join(rel, e.name) : e.name;
      if (e.isDirectory()) {
        const f = walk(r);
        if (f) return f;
        continue;
      }
      if (!e.isFile() || !ours(r)) return r;
    }
    return null;
  };
  return walk('');
}

/** A private folder beside the destination; stale ones of dead processes are removed first. */
export function makeStage(out: string): string {
  const parent = path.dirname(out);
  const base = path.basename(out);
  try {
    fs.mkdirSync(parent, { recursive: true });
  } catch (e) {
    throw new SdcError(out, `cannot create the folder ${parent} (${(e as NodeJS.ErrnoException).code})`);
  }
  const prefix = `.${base}.sdc-`;
  for (const name of fs.readdirSync(parent)) {
    if (!name.startsWith(prefix)) continue;
    const pid = Number(name.slice(prefix.length).split('-')[1]);
    if (Number.isSafeInteger(pid) && pid !== process.pid && !alive(pid)) fs.rmSync(path.join(parent, name), { recursive: true, force: true });
  }
  // mkdir, not mkdtemp: the stage becomes the output folder, which takes the user's umask (mkdtemp's 0700
  // would keep a web server or another user from reading a compiled pipeline)
  for (let attempt = 0; ; attempt++) {
    const stage = path.join(parent, `${prefix}stage-${process.pid}-${crypto.randomBytes(6).toString('hex')}`);
    try {
      fs.mkdirSync(stage);
      return stage;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EEXIST' && attempt < 8) continue;
      throw new SdcError(out, `cannot write in ${parent} (${code})`);
    }
  }
}

/**
 * Move the staged folder into place. A new destination is one rename. An existing one is checked again
 * with `recheck` (another process may have written it meanwhile; it throws when the folder now holds
 * what must not be replaced), moved aside, replaced, then removed.
 */
export function commitFolder(stage: string, out: string, given: string, recheck: () => void): void {
  for (let attempt = 0; attempt < 3; attempt++) {
    if (!fs.existsSync(out)) {
      try {
        fs.renameSync(stage, out);
        return;
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw e;
        continue; // another writer got there first: replace its output like any earlier one
      }
    }
    recheck();
    const old = `${path.join(path.dirname(out), `.${path.basename(out)}.sdc-old-${process.pid}`)}-${Date.now().toString(36)}`;
    try {
      fs.renameSync(out, old);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw e;
    }
    try {
      fs.renameSync(stage, out);
    } catch (e) {
      fs.renameSync(old, out);
      throw e;
    }
    fs.rmSync(old, { recursive: true, force: true });
    return;
  }
  throw new SdcError(given, 'kept changing while sdc wrote it (another sdc writing the same folder?); nothing was written');
}
