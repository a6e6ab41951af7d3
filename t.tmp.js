const {compile}=require('./dist/compiler/compile');
const ort=require('onnxruntime-node');
function feeds(b,s,seq){const r=(n,seed)=>{const a=new Float32Array(n);let x=seed;for(let i=0;i<n;i++){x^=x<<13;x^=x>>>17;x^=x<<5;a[i]=(x>>>0)/2147483648-1;}return a};
return {sample:new ort.Tensor('float32',r(b*4*s*s,11),[b,4,s,s]),timestep:new ort.Tensor('float32',Float32Array.from({length:b},(_, i)=>500+i),[b]),encoder_hidden_states:new ort.Tensor('float32',r(b*seq*32,23),[b,seq,32])};}
(async()=>{
for (const f of (process.argv[2]||'unet_sdpa_op17,unet_vanilla_op17,unet_dynamo_op18').split(',')) {
 for (const target of (process.argv[3]||'cpu').split(',')) {
  const src=`/work/shared/models/tiny/${f}.onnx`, out=`/tmp/${f}.${target}.onnx`;
  let r;
  try { r=compile(src,{output:out,mode:'default',target, verifyEach:true}); } catch(e){console.log(f,target,'ERR',e.stack.slice(0,800));continue;}
  const counts={}; for(const p of r.passes) if(p.name.startsWith('fuse')) for(const [k,v] of Object.entries(p.counts||{})) counts[k]=(counts[k]||0)+v;
  const sk=[...new Set(r.explanations.filter(e=>e.status==='skipped').map(e=>e.pass+': '+e.reason))].slice(0,4);
  let line=`${f} ${target} ${r.nodesBefore}->${r.nodesAfter} ${JSON.stringify(counts)}`;
  if (target==='cpu') { const fd=feeds(2,32,16);
   const a=await (await ort.InferenceSession.create(src)).run(fd);
   try{ const bb=await (await ort.InferenceSession.create(out)).run(fd);
   const x=a.out_sample.data,y=bb.out_sample.data;let m=0,sc=0;for(let i=0;i<x.length;i++){sc=Math.max(sc,Math.abs(x[i]));m=Math.max(m,Math.abs(x[i]-y[i]));}
   line+=' rel '+(m/sc).toExponential(2);}catch(e){line+=' RUNERR '+e.message.slice(0,200);} }
  console.log(line); if(sk.length) console.log('   ', sk);
 }
}})();
