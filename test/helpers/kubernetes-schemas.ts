import { ScaledObject } from '@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { StatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';

/** The API's own schemas (OpenAPI of Kubernetes and KEDA's CRD) for each kind the kit uses. */
const models: Record<string, new (data: never) => { validate(): void }> = {
  'apps/v1/Deployment': Deployment,
  'apps/v1/StatefulSet': StatefulSet,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'v1/Secret': Secret,
  'v1/Service': Service,
  'keda.sh/v1alpha1/ScaledObject': ScaledObject,
};

/**
 * Throws what the schema finds wrong (a wrong type, a value out of an enum, a missing required field), as the
 * API server would refuse it. Unknown fields pass: these schemas do not close their objects.
 */
export function validateAgainstApiSchema(manifest: Record<string, unknown>): void {
  const key = `${manifest.apiVersion}/${manifest.kind}`;
  const Model = models[key];
  if (!Model) throw new Error(`no schema for ${key}: add its model from kubernetes-models or @kubernetes-models/keda`);
  const { file: _file, ...object } = manifest;
  new Model(object as never).validate();
}
