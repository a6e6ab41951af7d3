import { DataType } from './dtype';
import { KeyValue, Tensor } from './tensor';
import { SdcError } from './errors';

/** A dimension: a number when known, a symbol (`batch`, `height/2`) when named, null when unknown. */
export type Dim = number | string | null;

export type ValueType =
  | { kind: 'tensor'; elemType: DataType; shape: Dim[] | null; denotation?: string; dimDenotations?: (string | undefined)[] }
  /** Sequence, map, optional, sparse and opaque types: the compiler carries them through unread. */
  | { kind: 'other'; proto: unknown };

/** int64 attributes: a plain number when it is exact, a bigint beyond 2^53 (INT64_MAX as "to the end"). */
export type Int = number | bigint;

export enum AttrType {
  UNDEFINED = 0, FLOAT = 1, INT = 2, STRING = 3, TENSOR = 4, GRAPH = 5, FLOATS = 6, INTS = 7, STRINGS = 8,
  TENSORS = 9, GRAPHS = 10, SPARSE_TENSOR = 11, SPARSE_TENSORS = 12, TYPE_PROTO = 13, TYPE_PROTOS = 14,
}

export type Attribute =
  | { name: string; type: AttrType.FLOAT; value: number }
  | { name: string; type: AttrType.INT; value: Int }
  | { name: string; type: AttrType.STRING; value: Uint8Array }
  | { name: string; type: AttrType.TENSOR; value: Tensor }
  | { name: string; type: AttrType.GRAPH; value: Graph }
  | { name: string; type: AttrType.FLOATS; value: number[] }
  | { name: string; type: AttrType.INTS; value: Int[] }
  | { name: string; type: AttrType.STRINGS; value: Uint8Array[] }
  | { name: string; type: AttrType.TENSORS; value: Tensor[] }
  | { name: string; type: AttrType.GRAPHS; value: Graph[] }
  /** Sparse tensors, type protos, and attributes that only reference a function's attribute. */
  | { name: string; type: AttrType.SPARSE_TENSOR | AttrType.SPARSE_TENSORS | AttrType.TYPE_PROTO | AttrType.TYPE_PROTOS | AttrType.UNDEFINED; value: unknown };

export interface AttributeMeta {
  docString?: string;
  refAttrName?: string;
}

export interface Use {
  node: Node;
  index: number;
}

export class Value {
  producer: Node | null = null;
  uses: Use[] = [];
  initializer: Tensor | null = null;
  type: ValueType | null = null;
  docString = '';
  metadataProps: KeyValue[] = [];
  /** An optional output the node does not produce (written back as ''). */
  omitted = false;

  constructor(public graph: Graph, public name: string) {}

  get isGraphInput(): boolean {
    return this.graph.inputs.includes(this);
  }

  get isGraphOutput(): boolean {
    return this.graph.outputs.includes(this);
  }

  /** The constant tensor behind this value, if it is an initializer (not one that is also a graph input). */
  get constant(): Tensor | null {
    return this.initializer && !this.isGraphInput ? this.initializer : null;
  }

  get shape(): Dim[] | null {
    return this.type?.kind === 'tensor' ? this.type.shape : null;
  }

  get elemType(): DataType | null {
    return this.type?.kind === 'tensor' ? this.type.elemType : null;
  }
}

export class Node {
  inputs: (Value | null)[] = [];
  outputs: Value[] = [];
  attrs = new Map<string, Attribute & AttributeMeta>();
  overload = '';
  docString = '';
  metadataProps: KeyValue[] = [];
  /** device_configurations and other proto fields the compiler does not model, carried verbatim. */
  extra: Record<string, unknown> = {};

  /** Set when the node is removed or erased from its graph (Graph.contains answers from it in O(1)). */
  detached = false;
  /** Graph.topoSort's scratch mark (the epoch of the last check that saw this node), instead of a Map. */
  topoMark = 0;

  constructor(public graph: Graph, public opType: string, public domain: string, public name: string) {}

  /** Domain spelled for people and histograms: the default domain is `ai.onnx`. */
  get qualifiedOp(): string {
    return `${this.domain === '' ? 'ai.onnx' : this.domain}::${this.opType}`;
  }

  attr(name: string): (Attribute & AttributeMeta) | undefined {
    return this.attrs.get(name);
  }

  int(name: string, dflt: number): number;
  int(name: string): number | undefined;
  int(name: string, dflt?: number): number | undefined {
    const a = this.attrs.get(name);
    if (!a) return dflt;
    if (a.type !== AttrType.INT) throw this.badAttr(name, a.type, 'an int');
    return Number(a.value);
  }

  ints(name: string): number[] | undefined {
    const a = this.attrs.get(name);
    if (!a) return undefined;
    if (a.type !== AttrType.INTS) throw this.badAttr(name, a.type, 'a list of ints');
    return a.value.map((x) => clampInt(x));
  }

  /** An attribute of the wrong type makes the model invalid: said naming the node (the file is added by compile()). */
  private badAttr(name: string, type: AttrType, want: string): SdcError {
    return new SdcError('', `node '${this.name || '(unnamed)'}' (${this.opType}): attribute '${name}' is ${AttrType[type] ?? type}, not ${want}`);
  }

  float(name: string, dflt: number): number {
    const a = this.attrs.get(name);
    return a && a.type === AttrType.FLOAT ? a.value : dflt;
  }

  string(name: string): string | undefined {
    const a = this.attrs.get(name);
    return a && a.type === AttrType.STRING ? Buffer.from(a.value).toString('utf8') : undefined;
  }

  setAttr(a: Attribute): void {
    this.attrs.set(a.name, a);
  }

  /** Subgraphs held in GRAPH/GRAPHS attributes (If branches, Loop and Scan bodies). */
  subgraphs(): Graph[] {
    const out: Graph[] = [];
    for (const a of this.attrs.values()) {
      if (a.type === AttrType.GRAPH) out.push(a.value);
      else if (a.type === AttrType.GRAPHS) out.push(...a.value);
    }
    return out;
  }

  /** Values of enclosing graphs that this node's subgraphs read: dependencies as real as its inputs. */
  implicitInputs(): Value[] {
    if (this.attrs.size === 0) return [];
    const found = new Set<Value>();
    const visit = (g: Graph) => {
      for (const n of g.nodes) {
        for (const v of n.inputs) if (v && !isWithin(v.graph, g)) found.add(v);
        for (const s of n.subgraphs()) visit(s);
      }
      for (const v of g.outputs) if (!isWithin(v.graph, g)) found.add(v);
    };
    for (const s of this.subgraphs()) visit(s);
    return [...found];
  }
}

/** Large int64s (INT64_MAX for "to the end") clamp to safe numbers: shape arithmetic only needs their sign. */
export function clampInt(x: Int): number {
  if (typeof x === 'number') return x;
  if (x > BigInt(Number.MAX_SAFE_INTEGER)) return Number.MAX_SAFE_INTEGER;
  if (x < BigInt(Number.MIN_SAFE_INTEGER)) return Number.MIN_SAFE_INTEGER;
  return Number(x);
}

/** Is graph `inner` the same as or nested inside `outer`? */
function isWithin(inner: Graph, outer: Graph): boolean {
  for (let g: Graph | null = inner; g; g = g.parent) if (g === outer) return true;
  return false;
}

export interface NewNode {
  op: string;
  domain?: string;
  name?: string;
  inputs: (Value | null)[];
  /** Output values to create (names made unique) or existing unproduced values to define. */
  outputs: (string | Value)[];
  attrs?: Attribute[];
  /** Insert before this node (default: at the end; call topoSort() after bulk edits). */
  before?: Node;
}

let topoEpoch = 0;

export class Graph {
  private nodeList: Node[] = [];
  /**
   * The live nodes in order. Removed nodes leave the list lazily (removeNode is O(1)); the first read after
   * removals filters them out once, so a pass that removes k nodes while walking pays O(N), not O(k·N).
   * A walk over an array read before a removal still sees the removed node: check `contains(n)`.
   */
  get nodes(): Node[] {
    if (this.dirty) {
      this.nodeList = this.nodeList.filter((n) => !n.detached);
      this.dirty = false;
    }
    return this.nodeList;
  }
  set nodes(nodes: Node[]) {
    this.nodeList = nodes;
    this.dirty = nodes.some((n) => n.detached);
  }
  inputs: Value[] = [];
  outputs: Value[] = [];
  values = new Map<string, Value>();
  docString = '';
  /** sparse_initializer, quantization_annotation, metadata_props: carried verbatim. */
  extra: Record<string, unknown> = {};
  private nameCounter = 0;

  constructor(public name: string, public parent: Graph | null = null) {}

  /** The value called `name`, looked up in this graph and then in the enclosing ones. */
  lookup(name: string): Value | undefined {
    for (let g: Graph | null = this; g; g = g.parent) {
      const v = g.values.get(name);
      if (v) return v;
    }
    return undefined;
  }

  /** A new value with a name unused in this graph and all enclosing graphs. */
  newValue(base: string): Value {
    const name = this.uniqueName(base);
    const v = new Value(this, name);
    this.values.set(name, v);
    return v;
  }

  uniqueName(base: string): string {
    if (!this.nameTaken(base)) return base;
    for (;;) {
      const name = `${base}__${++this.nameCounter}`;
      if (!this.nameTaken(name)) return name;
    }
  }

  private nameTaken(name: string): boolean {
    return this.lookup(name) !== undefined;
  }

  addInitializer(base: string, tensor: Tensor): Value {
    const v = this.newValue(base);
    tensor.name = v.name;
    v.initializer = tensor;
    v.type = { kind: 'tensor', elemType: tensor.dtype, shape: [...tensor.dims] };
    return v;
  }

  addNode(spec: NewNode): Node {
    const node = new Node(this, spec.op, spec.domain ?? '', spec.name ? this.uniqueNodeName(spec.name) : this.uniqueNodeName(spec.op));
    spec.inputs.forEach((v, i) => {
      node.inputs.push(v);
      if (v) v.uses.push({ node, index: i });
    });
    for (const o of spec.outputs) {
      const v = typeof o === 'string' ? this.newValue(o) : o;
      if (v.producer) throw new Error(`value ${v.name} already has a producer`);
      v.producer = node;
      node.outputs.push(v);
    }
    for (const a of spec.attrs ?? []) node.attrs.set(a.name, a);
    if (spec.before) {
      const i = this.nodes.indexOf(spec.before);
      this.nodes.splice(i < 0 ? this.nodes.length : i, 0, node);
    } else {
      this.nodes.push(node);
    }
    return node;
  }

  private nodeNames: Set<string> | null = null;
  private uniqueNodeName(base: string): string {
    if (!this.nodeNames) this.nodeNames = new Set(this.nodes.map((n) => n.name));
    let name = base;
    while (this.nodeNames.has(name)) name = `${base}__${++this.nameCounter}`;
    this.nodeNames.add(name);
    return name;
  }

  /**
   * Detach a node: its inputs lose this use; its outputs lose their producer (and must be unused or
   * redefined). O(1) in the graph's size: `nodes` drops it at its next read.
   */
  removeNode(node: Node): void {
    this.erase(node);
  }

  /** Remove many nodes at once (linear time, for passes that delete thousands). */
  removeNodes(nodes: Iterable<Node>): void {
    for (const node of nodes) this.erase(node);
  }

  /** Whether some node was removed since `nodes` was last filtered. */
  private dirty = false;

  /**
   * Detach a node now (its inputs lose this use, its outputs their producer) and drop it from `nodes` at
   * its next read: constant time per node, for drivers that erase many while walking `nodes`.
   */
  erase(node: Node): void {
    if (node.detached) return;
    node.detached = true;
    node.inputs.forEach((v, i) => {
      if (v) removeUse(v, node, i);
    });
    for (const o of node.outputs) if (o.producer === node) o.producer = null;
    this.dirty = true;
  }

  /** Whether `node` is one of this graph's nodes (not removed or erased): O(1), unlike `nodes.includes`. */
  contains(node: Node): boolean {
    return node.graph === this && !node.detached;
  }

  isErased(node: Node): boolean {
    return node.graph === this && node.detached;
  }

  compact(): void {
    void this.nodes;
  }

  setInput(node: Node, index: number, v: Value | null): void {
    const old = node.inputs[index];
    if (old === v) return;
    if (old) removeUse(old, node, index);
    node.inputs[index] = v;
    if (v) v.uses.push({ node, index });
  }

  /**
   * Make every reader of `from` read `to` instead. A graph output keeps its public name: when `from` is an
   * output, `to` takes over that name if it can, else an Identity is kept by the caller (returns false).
   */
  replaceAllUsesWith(from: Value, to: Value): boolean {
    if (from === to) return true;
    for (const u of [...from.uses]) u.node.graph.setInput(u.node, u.index, to);
    const oi = this.outputs.indexOf(from);
    if (oi < 0) return true;
    if (to.isGraphInput || to.isGraphOutput || to.graph !== this || to.initializer) {
      // An output cannot be renamed onto an input or another output: route it through an Identity.
      if (from.producer) this.removeNode(from.producer);
      this.addNode({ op: 'Identity', inputs: [to], outputs: [from] });
      return false;
    }
    this.renameValue(to, from.name);
    this.outputs[oi] = to;
    if (!to.type) to.type = from.type;
    return true;
  }

  /** Give `v` the name `name`, freeing it from its current holder (which must then be dead). */
  renameValue(v: Value, name: string): void {
    const holder = this.values.get(name);
    if (holder && holder !== v) {
      this.values.delete(name);
      holder.name = this.uniqueName(`${name}__old`);
      this.values.set(holder.name, holder);
    }
    this.values.delete(v.name);
    v.name = name;
    this.values.set(name, v);
    if (v.initializer) v.initializer.name = name;
  }

  /**
   * Turn `v` into a constant holding `tensor`, keeping its name (so graph outputs and readers need no
   * rewiring). Its producer is removed, or, when that node has other outputs, keeps a private slot.
   */
  makeConstant(v: Value, tensor: Tensor): void {
    const p = v.producer;
    if (p) {
      if (p.outputs.length === 1) this.removeNode(p);
      else {
        const slot = this.newValue(`${v.name}__unused`);
        slot.producer = p;
        slot.omitted = true;
        p.outputs[p.outputs.indexOf(v)] = slot;
        v.producer = null;
      }
    }
    tensor.name = v.name;
    v.initializer = tensor;
    v.type = { kind: 'tensor', elemType: tensor.dtype, shape: [...tensor.dims] };
  }

  /** Values that are initializers, in insertion order. */
  initializers(): Value[] {
    return [...this.values.values()].filter((v) => v.initializer);
  }

  /**
   * Reorder nodes so every node follows the producers of its inputs; throws on a cycle. A graph already
   * in order (most calls: every pass and analysis sorts first) is recognized in one allocation-free walk.
   */
  topoSort(): void {
    if (this.inOrder()) return;
    const order: Node[] = [];
    const state = new Map<Node, number>(); // 1 visiting, 2 done
    // each frame keeps its node's producers, listed once: a node of k inputs is revisited k times
    const stack: { node: Node; deps: Node[]; next: number }[] = [];
    const deps = (n: Node): Node[] => {
      const out: Node[] = [];
      for (const v of n.inputs) if (v?.producer && v.producer.graph === this) out.push(v.producer);
      for (const v of n.implicitInputs()) if (v?.producer && v.producer.graph === this) out.push(v.producer);
      return out;
    };
    for (const root of this.nodes) {
      if (state.get(root) === 2) continue;
      stack.push({ node: root, deps: deps(root), next: 0 });
      state.set(root, 1);
      while (stack.length) {
        const top = stack[stack.length - 1];
        if (top.next < top.deps.length) {
          const next = top.deps[top.next++];
          const s = state.get(next);
          if (s === 1) throw new Error(`cycle through node ${next.name} (${next.opType})`);
          if (s !== 2) {
            state.set(next, 1);
            stack.push({ node: next, deps: deps(next), next: 0 });
          }
        } else {
          state.set(top.node, 2);
          order.push(top.node);
          stack.pop();
        }
      }
    }
    this.nodes = order;
  }

  /** Whether every node already follows the producers of its inputs (each node marked as it is passed). */
  private inOrder(): boolean {
    const epoch = ++topoEpoch;
    for (const n of this.nodes) {
      for (const v of n.inputs) {
        const p = v?.producer;
        if (p && p.graph === this && p.topoMark !== epoch) return false;
      }
      if (n.attrs.size) {
        for (const v of n.implicitInputs()) {
          const p = v.producer;
          if (p && p.graph === this && p.topoMark !== epoch) return false;
        }
      }
      n.topoMark = epoch;
    }
    return true;
  }

  /** Every graph: this one and all nested subgraphs. */
  *allGraphs(): Generator<Graph> {
    yield this;
    for (const n of this.nodes) if (n.attrs.size) for (const s of n.subgraphs()) yield* s.allGraphs();
  }

  countNodes(): number {
    let n = 0;
    for (const g of this.allGraphs()) n += g.nodes.length;
    return n;
  }
}

function removeUse(v: Value, node: Node, index: number): void {
  const i = v.uses.findIndex((u) => u.node === node && u.index === index);
  if (i >= 0) v.uses.splice(i, 1);
}
