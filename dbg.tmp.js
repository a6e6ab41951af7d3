const {readModel}=require('./dist/compiler/onnx/read');
for (const f of ['/work/shared/models/tiny/unet_sdpa_op17.onnx','/tmp/unet_sdpa_op17.rt.onnx']){
const m=readModel(f);
const n=m.graph.nodes.find(n=>n.name==='/m/down_blocks.0/resnets.0/norm1/Reshape');
console.log(n.inputs.map(v=>v.name), [...n.attrs.values()]);
const p=n.inputs[1].producer; console.log(p&&p.opType, p&&[...p.attrs.values()].map(a=>[a.name,a.type,a.value.dims,a.value.data, a.value.dtype]));
}
