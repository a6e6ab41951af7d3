const {sd15Model}=require('./dist/fixtures/materialize');const {terminalProgress}=require('./dist/compiler/progress');
console.time('mat');console.log(sd15Model('sdpa_op17','/work/shared'));console.timeEnd('mat');
