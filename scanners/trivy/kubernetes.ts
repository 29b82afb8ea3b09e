// Kubernetes resources as assets, shared by `trivy k8s` reports and Trivy Operator CRs so both name
// the same resource the same way: "k8s://<cluster>/<namespace>/<Kind>/<name>". The cluster part is
// empty when the report does not say (Trivy Operator runs inside the cluster and never names it);
// the namespace is "-" for cluster-scoped resources.

import type { AssetRef } from '../../domain/finding.ts';

export interface KubernetesResource {
  namespace?: string;
  kind?: string;
  name?: string;
  container?: string;
}

export function k8sResourceId(cluster: string | undefined, resource: KubernetesResource): string {
  const part = (value: string | undefined, fallback: string): string => encodeURIComponent(value ?? fallback);
  return `k8s://${part(cluster, '')}/${part(resource.namespace, '-')}/${part(resource.kind, '-')}/${part(resource.name, '-')}`;
}

export function k8sTags(cluster: string | undefined, resource: KubernetesResource): string[] {
  return [
    cluster && `k8s.cluster=${cluster}`,
    resource.namespace && `k8s.namespace=${resource.namespace}`,
    resource.kind && `k8s.kind=${resource.kind}`,
    resource.name && `k8s.name=${resource.name}`,
    resource.container && `k8s.container=${resource.container}`,
  ].filter((tag): tag is string => Boolean(tag));
}

export function k8sResourceAsset(cluster: string | undefined, resource: KubernetesResource): AssetRef {
  return { kind: 'cloud', cloudId: k8sResourceId(cluster, resource), tags: k8sTags(cluster, resource) };
}
