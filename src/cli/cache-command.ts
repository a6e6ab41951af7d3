import * as fs from 'fs';
import type { Argv } from 'yargs';
import { SdcError } from '../ir/errors';
import { cacheBudget, CacheEntryInfo, defaultCacheDir, DiskCache } from '../runtime/cache';

const ACTIONS = ['list', 'prune', 'clear'] as const;
type Action = (typeof ACTIONS)[number];

/** `sdc cache list|prune|clear`: the yargs command, its errors reported through `fail`. */
export function cacheCommand(fail: (e: unknown) => void) {
  return {
    command: 'cache <action>',
    describe: 'list the cache of compiled models, prune it to its byte budget, or clear it',
    builder: (y: Argv) =>
      y
        .positional('action', { choices: ACTIONS, describe: 'list: entries, least recently used first; prune: remove dead build folders and evict to the budget; clear: remove every entry' })
        .option('cache-dir', { type: 'string', describe: 'the cache folder (default $SDC_CACHE_DIR or ~/.cache/sdc; a build step\'s is node_modules/.cache/sdc)' })
        .option('bytes', { type: 'string', describe: 'with prune: the budget, e.g. 20G (default $SDC_CACHE_BYTES, else 20 GiB)' })
        .option('json', { type: 'boolean', default: false, describe: 'with list: machine-readable JSON' })
        .example('$0 cache list', 'what the runtime cache holds')
        .example('$0 cache prune --bytes 10G', 'evict least recently used entries until 10 GiB remain'),
    handler: (args: { action?: string; 'cache-dir'?: string; bytes?: string; json?: boolean }) => {
      try {
        process.stdout.write(cacheAction(args.action as Action, { cacheDir: args['cache-dir'], bytes: args.bytes, json: args.json ?? false }) + '\n');
      } catch (e) {
        fail(e);
      }
    },
  };
}

function cacheAction(action: Action, o: { cacheDir?: string; bytes?: string; json?: boolean }): string {
  const dir = o.cacheDir ?? defaultCacheDir();
  if (o.bytes !== undefined && action !== 'prune') throw new SdcError('', '--bytes goes with prune');
  const st = fs.statSync(dir, { throwIfNoEntry: false });
  if (st && !st.isDirectory()) throw new SdcError(dir, 'is not a folder (--cache-dir names the cache folder)');
  const budget = cacheBudget(o.bytes, '--bytes');
  if (!st) return action === 'list' && o.json ? '[]' : `${dir}: no cache here (nothing to ${action})`;
  const cache = DiskCache.open(dir, (w) => { throw new SdcError(dir, w.replace(/^sdc: /, '')); }, budget);
  if (action === 'list') {
    const entries = cache.list();
    if (o.json) return JSON.stringify(entries, null, 2);
    const total = entries.reduce((s, e) => s + e.bytes, 0);
    return [...entries.map(line), `${entries.length} entr${entries.length === 1 ? 'y' : 'ies'}, ${size(total)} in ${dir} (budget ${size(budget)})`].join('\n');
  }
  if (action === 'prune') {
    const garbage = cache.collectGarbage();
    const before = cache.list();
    const evicted = new Set(cache.enforceBudget(undefined, budget));
    const freed = before.filter((e) => evicted.has(e.key)).reduce((s, e) => s + e.bytes, 0);
    return `${dir}: evicted ${evicted.size} entr${evicted.size === 1 ? 'y' : 'ies'} (${size(freed)}) to fit ${size(budget)}, removed ${garbage.length} dead build folder${garbage.length === 1 ? '' : 's'}`;
  }
  const n = cache.clear();
  return `${dir}: removed ${n} entr${n === 1 ? 'y' : 'ies'}`;
}

function line(e: CacheEntryInfo): string {
  const d = (e.describe ?? {}) as { source?: string; mode?: string; target?: string; precision?: string; shapeKey?: string };
  const what = [d.source, d.mode, d.target, d.precision, d.shapeKey].filter((x) => typeof x === 'string' && x).join(' ').replace(/\n/g, '\\n');
  return `${e.key}  ${size(e.bytes).padStart(9)}  last used ${e.lastUsed.toISOString()}  ${what}`;
}

function size(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let u = 0;
  let v = bytes;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u ? v.toFixed(1) : v} ${units[u]}`;
}
