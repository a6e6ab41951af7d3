import { Graph, Node, Value } from '../ir/graph';

/**
 * One piece of a calibration run: a run of consecutive nodes that onnxruntime opens as a model of its
 * own, fed what earlier pieces computed.
 */
export interface Segment {
  /** Its nodes in graph order: the Constant nodes it reads from elsewhere (copied in), then its own. */
  nodes: Node[];
  /** Graph inputs and values computed by earlier segments that its nodes read. */
  inputs: Value[];
  /** The initializers its nodes read (onnxruntime loads only these for it). */
  initializers: Value[];
  /** The measured values its own nodes compute. */
  measured: Value[];
  /** The values its own nodes compute that later segments read. */
  handsOn: Value[];
  /** Inputs no later segment reads: dropped once this segment has run. */
  done: Value[];
}

const isConstantNode = (n: Node): boolean => n.opType === 'Constant' && n.domain === '' && n.inputs.length === 0;

/**
 * Splits `graph` (nodes in topological order) into segments of consecutive nodes, each holding at most
 * about `limits.bytes` while it runs: the initializers it reads plus every tensor its nodes compute
 * (`bytes`; an upper bound, onnxruntime frees what is not an output as it goes) plus what it is fed;
 * and at most `limits.nodes` nodes as onnxruntime will see them (`nodesOf`: a node and what is added
 * to measure its outputs), as its session set-up grows with the square of that. A segment that cannot
 * end yet (below) grows past them.
 *
 * A segment ends only where the tensors computed before and read after (kept in JS between segments,
 * once per input set) total at most a quarter of `limits.bytes`: in a UNet the skip connections and the hidden
 * state, a few tens of MB at 64×64, never an attention score matrix between its MatMul and Softmax.
 * Nor does one end where such a tensor's element type is unknown (it could not be declared as the next
 * segment's input). Constant nodes are copied into each segment that reads them instead of being
 * passed along: onnxruntime turns a Constant into an initializer, and a kernel may treat a constant
 * input differently from a fed one.
 */
export function planSegments(graph: Graph, bytes: (v: Value) => number, measured: ReadonlySet<Value>, limits: { bytes: number; nodes: number; nodesOf: (n: Node) => number }, declarable: (v: Value) => boolean): Segment[] {
  const budget = limits.bytes;
  const nodes = graph.nodes;
  if (!nodes.length) return [];
  const at = new Map(nodes.map((n, i) => [n, i]));
  // a value computed here and read later: where it is read last; what crosses each boundary (before node i)
  const lastRead = new Map<Value, number>();
  for (const [i, n] of nodes.entries()) {
    for (const v of n.inputs) if (v && v.producer && !isConstantNode(v.producer) && at.has(v.producer)) lastRead.set(v, i);
  }
  // difference arrays: a value adds its bytes to every boundary from after its producer to its last read
  const crossing = new Float64Array(nodes.length + 2);
  const undeclarable = new Int32Array(nodes.length + 2);
  for (const [v, last] of lastRead) {
    const from = at.get(v.producer!)! + 1;
    crossing[from] += bytes(v);
    crossing[last + 1] -= bytes(v);
    if (!declarable(v)) {
      undeclarable[from]++;
      undeclarable[last + 1]--;
    }
  }
  for (let i = 1; i <= nodes.length; i++) {
    crossing[i] += crossing[i - 1];
    undeclarable[i] += undeclarable[i - 1];
  }
  const canEnd = (i: number) => undeclarable[i] === 0 && crossing[i] <= budget / 4;
  /** What node `n` adds to a segment that already reads the initializers in `read`. */
  const added = (n: Node, read: ReadonlySet<Value>): number => {
    let c = 0;
    const weights = new Set(n.inputs.filter((v): v is Value => !!v?.initializer && !read.has(v)));
    for (const v of weights) c += v.initializer!.byteLength;
    for (const o of n.outputs) if (!o.omitted) c += bytes(o);
    return c;
  };
  const take = (n: Node, read: Set<Value>): number => {
    const c = added(n, read);
    for (const v of n.inputs) if (v?.initializer) read.add(v);
    return c;
  };

  // greedy: fill a segment until the next node would overflow it, then end it at the last boundary
  // where one may end
  const bounds: number[] = [0];
  let start = 0;
  let read = new Set<Value>();
  let held = 0;
  let count = 0;
  let lastEnd = -1;
  for (let i = 0; i < nodes.length; i++) {
    if (i > start && canEnd(i)) lastEnd = i;
    if ((held + added(nodes[i], read) > budget || count + limits.nodesOf(nodes[i]) > limits.nodes) && lastEnd > start) {
      start = lastEnd;
      bounds.push(start);
      read = new Set();
      held = crossing[start];
      count = 0;
      lastEnd = -1;
      for (let k = start; k < i; k++) {
        held += take(nodes[k], read);
        count += limits.nodesOf(nodes[k]);
        if (k + 1 > start && canEnd(k + 1)) lastEnd = k + 1;
      }
    }
    held += take(nodes[i], read);
    count += limits.nodesOf(nodes[i]);
  }
  bounds.push(nodes.length);

  const segments: Segment[] = [];
  const owned: Node[][] = [];
  const lastSegment = new Map<Value, number>();
  for (let s = 0; s + 1 < bounds.length; s++) {
    const own = nodes.slice(bounds[s], bounds[s + 1]);
    const ownSet = new Set(own);
    const copied = new Set<Node>();
    const inputs = new Set<Value>();
    const initializers = new Set<Value>();
    for (const n of own) {
      for (const v of n.inputs) {
        if (!v) continue;
        if (v.initializer) {
          initializers.add(v);
          if (v.isGraphInput) inputs.add(v);
        } else if (v.producer && ownSet.has(v.producer)) continue;
        else if (v.producer && isConstantNode(v.producer)) copied.add(v.producer);
        else inputs.add(v);
      }
    }
    for (const v of inputs) lastSegment.set(v, s);
    owned.push(own);
    segments.push({ nodes: [...copied, ...own], inputs: [...inputs], initializers: [...initializers], measured: [], handsOn: [], done: [] });
  }
  for (const [s, seg] of segments.entries()) {
    const computed = owned[s].flatMap((n) => n.outputs).filter((v) => !v.omitted);
    seg.measured = computed.filter((v) => measured.has(v));
    seg.handsOn = computed.filter((v) => (lastSegment.get(v) ?? -1) > s);
    seg.done = seg.inputs.filter((v) => lastSegment.get(v) === s);
    // a Constant whose value only later segments read (each has its copy) would be dead here
    const used = new Set<Value>([...seg.measured, ...seg.handsOn, ...seg.nodes.flatMap((n) => n.inputs.filter((v): v is Value => v !== null))]);
    seg.nodes = seg.nodes.filter((n) => !isConstantNode(n) || n.outputs.some((v) => used.has(v)));
  }
  return segments;
}
