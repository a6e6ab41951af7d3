/**
 * A KServe InferenceService (serving.kserve.io/v1beta1) for a Triton model repository: KServe's ONNX
 * runtime is Triton (`kserve-tritonserver`, which starts tritonserver on the mounted storage), so the
 * predictor names the onnx format, the open inference protocol (v2) and where the repository was uploaded.
 */

/** The header that marks the manifest as sdc's (an existing repository is replaced only when it is). */
export const KSERVE_HEADER = '# Written by sdc export triton --kserve: a KServe InferenceService for this model repository.';
export const KSERVE_FILE = 'inferenceservice.yaml';

/** A Kubernetes name (DNS-1123 label) from a model or folder name. */
function kubernetesName(name: string): string {
  const n = name.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^[^a-z]+/, '').replace(/-+$/, '').slice(0, 63).replace(/-+$/, '');
  return n || 'sdc-models';
}

type Yaml = string | number | { [key: string]: Yaml };

/** Nested maps as block YAML; every string JSON-quoted (a JSON string is a YAML double-quoted scalar). */
function yaml(v: { [key: string]: Yaml }, indent = ''): string {
  return Object.entries(v)
    .map(([k, x]) => (typeof x === 'object' ? `${indent}${k}:\n${yaml(x, `${indent}  `)}` : `${indent}${k}: ${JSON.stringify(x)}\n`))
    .join('');
}

export function kserveManifest(name: string, gpus: number): string {
  // a GPU count is what the repository needs; CPU and memory depend on the models and the load, left to the cluster's defaults
  const limits: { [key: string]: Yaml } = { 'nvidia.com/gpu': String(gpus) };
  const doc = {
    apiVersion: 'serving.kserve.io/v1beta1',
    kind: 'InferenceService',
    metadata: { name: kubernetesName(name) },
    spec: {
      predictor: {
        model: {
          modelFormat: { name: 'onnx' },
          runtime: 'kserve-tritonserver',
          protocolVersion: 'v2',
          storageUri: 'REPLACE-WITH-THE-URI-THIS-REPOSITORY-WAS-UPLOADED-TO',
          ...(gpus ? { resources: { limits, requests: limits } } : {}),
        },
      },
    },
  };
  return `${KSERVE_HEADER}\n# Upload the repository (the folder holding this file) and put its URI in storageUri (s3://, gs://, pvc://...).\n${yaml(doc)}`;
}
