import { SdcError } from '../ir/errors';
import { Pass } from '../rewrite/pass';

/**
 * reduce-overhead with a shape key: write the static dims into the graph inputs, so that shape analysis
 * sees numbers everywhere and every shape computation can fold. A dim the model fixes must agree, and a
 * symbol shared by several inputs (batch) must get one number.
 */
export const specializeShapes: Pass = {
  name: 'specialize-shapes',
  description: 'set graph input dims from --shape (reduce-overhead); later passes fold every shape computation',
  run(graph, ctx) {
    if (!ctx.shapes || ctx.shapes.size === 0) return { changed: false };
    const file = ctx.model.source;
    const bySymbol = new Map<string, [string, number]>();
    let dims = 0;
    for (const [name, shape] of ctx.shapes) {
      const v = graph.inputs.find((i) => i.name === name);
      if (!v) throw new SdcError(file, `--shape names '${name}', which is not an input of the model`);
      if (v.type?.kind !== 'tensor') throw new SdcError(file, `input '${name}' is not a tensor; it cannot take a static shape`);
      const declared = v.type.shape;
      if (declared && declared.length !== shape.length) {
        throw new SdcError(file, `--shape gives '${name}' ${shape.length} dims (${shape.join('x')}) but the model declares ${declared.length} ([${declared.join(', ')}])`);
      }
      // -1 keeps the declared dim (a dim the runtime leaves dynamic)
      const dimsOut = shape.map((d, i) => (d === -1 && declared ? declared[i] : d));
      declared?.forEach((d, i) => {
        if (shape[i] === -1) return;
        if (typeof d === 'number' && d !== shape[i]) throw new SdcError(file, `--shape gives '${name}' dim ${i} = ${shape[i]}, but the model fixes it at ${d}`);
        if (typeof d === 'string') {
          const seen = bySymbol.get(d);
          if (seen && seen[1] !== shape[i]) throw new SdcError(file, `dim '${d}' is ${seen[1]} in '${seen[0]}' but ${shape[i]} in '${name}'`);
          bySymbol.set(d, [name, shape[i]]);
        }
      });
      v.type = { ...v.type, shape: dimsOut };
      dims += shape.filter((d) => d !== -1).length;
    }
    const dynamic = graph.inputs.filter((v) => !v.initializer && !ctx.shapes!.has(v.name) && v.type?.kind === 'tensor' && v.type.shape?.some((d) => typeof d !== 'number'));
    if (dynamic.length) {
      throw new SdcError(file, `--shape leaves ${dynamic.map((v) => `'${v.name}' [${(v.shape ?? []).join(', ')}]`).join(', ')} dynamic; give every input's dims`);
    }
    return { changed: dims > 0, counts: { inputs: ctx.shapes.size, dims } };
  },
};
