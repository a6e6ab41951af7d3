import { Graph } from './graph';
import { KeyValue } from './tensor';

/** A model: the graph plus the ModelProto fields around it. */
export class Model {
  irVersion = 8;
  /** Opset version per domain; the default domain is ''. */
  opsets = new Map<string, number>();
  producerName = '';
  producerVersion = '';
  domain = '';
  modelVersion: number | bigint = 0;
  docString = '';
  metadataProps: KeyValue[] = [];
  /** Model-local functions, training info and device configurations: carried through as decoded. */
  functions: unknown[] = [];
  trainingInfo: unknown[] = [];
  configuration: unknown[] = [];
  /** Where it was read from (absolute), for messages. */
  source = '';

  constructor(public graph: Graph) {}

  opset(domain = ''): number | undefined {
    return this.opsets.get(domain) ?? (domain === 'ai.onnx' ? this.opsets.get('') : undefined);
  }

  /** Import `domain` (version 1 unless imported already): a pass that emits a contrib op calls this. */
  useDomain(domain: string, version = 1): void {
    if (!this.opsets.has(domain)) this.opsets.set(domain, version);
  }

  /** The external data files this model's tensors read (absolute paths, once each). */
  externalFiles(): string[] {
    const files = new Set<string>();
    for (const g of this.graph.allGraphs()) {
      for (const v of g.initializers()) {
        const d = v.initializer!.data;
        if (d.kind === 'external') files.add(d.file);
      }
    }
    return [...files].sort();
  }

  /**
   * Before IR 4 every initializer had to be listed as a graph input too, and onnxruntime treats such
   * inputs as constants (it folds them; a caller cannot feed them). Make them plain constants, as IR 4
   * and later write them, so that sdc folds them as onnxruntime does and no compiled or finalized model
   * keeps an input whose initializer was folded away. Returns how many inputs became constants.
   */
  initializersAsConstants(): number {
    if (this.irVersion >= 4) return 0;
    const g = this.graph;
    const before = g.inputs.length;
    g.inputs = g.inputs.filter((v) => !v.initializer);
    this.irVersion = 4;
    return before - g.inputs.length;
  }

  setMetadata(key: string, value: string): void {
    const e = this.metadataProps.find((p) => p.key === key);
    if (e) e.value = value;
    else this.metadataProps.push({ key, value });
  }

  getMetadata(key: string): string | undefined {
    return this.metadataProps.find((p) => p.key === key)?.value;
  }
}
