import { SdcError } from '../ir/errors';
import { LoadOptions, SdcModel } from '../runtime';
import { Pipeline, readPipeline, Role } from './layout';

/** A pipeline's components, each a runtime model (one specialization per input shape) with shared options and cache. */
export interface SdcPipeline {
  dir: string;
  className: string | null;
  /** Component name (`unet`, `text_encoder`, ...) → its model. */
  components: Map<string, SdcModel>;
  roles: Map<string, Role>;
  /** The component called `name`; an unknown name is an error naming the ones there are. */
  get(name: string): SdcModel;
  /** Per component, the runtime's explanation (why each specialization was compiled, capture, precision). */
  explain(): Record<string, string[]>;
  release(): Promise<void>;
}

/**
 * Load a pipeline folder (Optimum's layout, the original or one sdc compiled) for the runtime: one model
 * per component, all with the same options and disk cache. Each compiles its specializations on first
 * use at the shapes the app calls it with.
 */
export async function loadPipeline(dir: string, options: LoadOptions = {}): Promise<SdcPipeline> {
  const p: Pipeline = readPipeline(dir);
  const components = new Map<string, SdcModel>();
  try {
    for (const c of p.components) components.set(c.name, await SdcModel.load(c.modelFile, options));
  } catch (e) {
    for (const m of components.values()) await m.release();
    throw e;
  }
  return {
    dir: p.dir,
    className: p.className,
    components,
    roles: new Map(p.components.map((c) => [c.name, c.role])),
    get(name: string) {
      const m = components.get(name);
      if (!m) throw new SdcError(p.dir, `no component '${name}' (components: ${[...components.keys()].join(', ')})`);
      return m;
    },
    explain() {
      return Object.fromEntries([...components].map(([k, m]) => [k, m.explain()]));
    },
    async release() {
      for (const m of components.values()) await m.release();
    },
  };
}
