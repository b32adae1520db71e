#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kubecrypt maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: mesh_info
short_description: Report the Istio mutual TLS posture of namespaces and pods
version_added: 0.1.0
author:
  - kubecrypt maintainers (@kubecrypt)
description:
  - Reads PeerAuthentications, namespaces, pods, the istiod Deployment, the C(cacerts) Secret and, when the API
    serves them, DestinationRules. The module changes nothing.
  - Works out the effective mutual TLS mode of every listed namespace and pod the way istiod does. A workload
    policy beats the namespace-wide policy, which beats the mesh-wide policy in the root namespace. V(UNSET)
    inherits, and without any policy the mode is V(PERMISSIVE). Among several policies at one level the oldest by
    C(creationTimestamp) applies. Policies with a selector in the root namespace are ignored, as istiod does.
  - Lists the running pods in the listed namespaces that have no proxy and are in a STRICT scope. With the
    sidecar profile a pod has a proxy when it has a container named C(istio-proxy). With the ambient profile the
    pod also counts as meshed when it carries the annotation C(ambient.istio.io/redirection=enabled).
  - O(planned_policies) are evaluated as if they were applied, so the role can check a change before making it.
  - Lists DestinationRules whose C(trafficPolicy.tls.mode) is V(DISABLE) or V(SIMPLE) towards a host in an
    enrolled namespace, because such a rule overrides auto mTLS and breaks calls to STRICT servers.
  - Validates the C(cacerts) Secret the way istiod does and returns the certificate metadata and days to expiry,
    never the key.
options:
  namespaces:
    description:
      - Namespaces to report on. Pods in other namespaces are not checked.
    type: list
    elements: str
    default: []
  root_namespace:
    description:
      - Root namespace of the mesh, C(meshConfig.rootNamespace) of istiod.
    type: str
    default: istio-system
  istiod_namespace:
    description:
      - Namespace of istiod and of the C(cacerts) Secret.
    type: str
    default: istio-system
  revision:
    description:
      - Revision of istiod. The Deployment is C(istiod) for the default revision V("") and C(istiod-REVISION)
        otherwise.
    type: str
    default: ""
  profile:
    description:
      - Data plane mode, which decides what counts as a proxy.
    type: str
    choices: [sidecar, ambient]
    default: sidecar
  planned_policies:
    description:
      - PeerAuthentication definitions to evaluate as if they were applied. A planned policy replaces the existing
        one with the same namespace and name and keeps its creation time. A new one counts as the newest.
    type: list
    elements: dict
    default: []
  cacerts_name:
    description:
      - Name of the plug-in CA Secret. Set it to an empty string to skip the check.
    type: str
    default: cacerts
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - kubernetes.core.k8s_auth_options
attributes:
  check_mode:
    support: full
    details:
      - The module only reads, so it does the same in check mode.
  diff_mode:
    support: none
  idempotent:
    description: Whether a second run with the same options reports no change.
    support: full
  platform:
    platforms: posix
    details:
      - The module runs where the task is delegated, usually the controller, and talks to the Kubernetes API from there.
notes:
  - The posture comes from the API objects. It does not prove that traffic is encrypted, and it does not read the
    configuration that a proxy really has.
  - A missing PeerAuthentication CRD counts as no policy, and a missing DestinationRule API skips that check, with
    RV(destination_rules.served) set to false.
  - The credentials need list on Namespaces, Pods, ReplicaSets, PeerAuthentications and DestinationRules, and get
    on Deployments and Secrets in O(istiod_namespace).
seealso:
  - module: kubecrypt.pod_encryption.istio_cacerts
  - name: PeerAuthentication
    description: Scope, modes and precedence of PeerAuthentication.
    link: https://istio.io/latest/docs/reference/config/security/peer_authentication/
requirements:
  - kubernetes >= 24.2.0
  - cryptography >= 41.0
"""

EXAMPLES = r"""
- name: Report the mutual TLS posture of two namespaces
  kubecrypt.pod_encryption.mesh_info:
    namespaces: [default, payments]
  register: mesh_posture

- name: Print one line per namespace
  ansible.builtin.debug:
    msg: "{{ mesh_posture.summary }}"

- name: Find pods that a STRICT namespace policy would cut off
  kubecrypt.pod_encryption.mesh_info:
    namespaces: [payments]
    planned_policies:
      - apiVersion: security.istio.io/v1
        kind: PeerAuthentication
        metadata:
          name: default
          namespace: payments
        spec:
          mtls:
            mode: STRICT
  register: mesh_plan
"""

RETURN = r"""
mesh:
  description: The mesh-wide mode and the policy in O(root_namespace) that sets it, or None without a policy.
  returned: always
  type: dict
  sample:
    mode: STRICT
    source: istio-system/default
namespaces:
  description: One entry per namespace in O(namespaces), in that order.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Name of the namespace.
      type: str
    found:
      description: Whether the namespace exists.
      type: bool
    enrolled:
      description: Whether an enrolment label puts new pods into the mesh.
      type: bool
    mode:
      description: Effective mode for pods that no workload policy selects.
      type: str
      sample: STRICT
    source:
      description: The policy that decides RV(namespaces[].mode) as NAMESPACE/NAME, or None without a policy.
      type: str
      sample: istio-system/default
    pods:
      description: Number of running pods.
      type: int
    unmeshed_pods:
      description: Names of the running pods without a proxy.
      type: list
      elements: str
    workload_modes:
      description: Effective mode of each pod that a workload policy decides, keyed by pod name.
      type: dict
  sample:
    - name: payments
      found: true
      enrolled: true
      mode: PERMISSIVE
      source: payments/default
      pods: 2
      unmeshed_pods: []
      workload_modes: {}
unmeshed_pods:
  description: Running pods without a proxy in a STRICT scope, with their mode and the deciding policy.
  returned: always
  type: list
  elements: dict
  sample:
    - namespace: default
      name: web-6d4f9c7b8-abcde
      mode: STRICT
      source: istio-system/default
migration_message:
  description: A sentence that lists RV(unmeshed_pods) and the ways out, or None when the list is empty.
  returned: always
  type: str
unmeshed_workloads:
  description: Deployments, StatefulSets and DaemonSets in O(namespaces) with a running pod that lacks the proxy.
  returned: always
  type: list
  elements: dict
  sample:
    - namespace: default
      kind: Deployment
      name: web
destination_rules:
  description: DestinationRules that override auto mTLS towards enrolled namespaces.
  returned: always
  type: dict
  contains:
    served:
      description: Whether the API serves DestinationRules.
      type: bool
    risky:
      description: Each rule with C(namespace), C(name), C(host) and the offending C(modes).
      type: list
      elements: dict
istiod:
  description: The istiod Deployment of O(revision).
  returned: always
  type: dict
  sample:
    name: istiod
    found: true
    ready: true
cacerts:
  description:
    - The plug-in CA Secret. C(found), C(valid), C(problem), and for a valid bundle C(intermediate), C(root) and
      C(trust_bundle) with the fields that M(kubecrypt.pod_encryption.istio_cacerts) returns, including
      C(days_to_expiry).
  returned: always
  type: dict
  sample:
    found: true
    valid: true
    problem: null
    intermediate:
      subject: L=cluster1,CN=Intermediate CA,O=Istio
      days_to_expiry: 364
summary:
  description: One line per namespace, for a play to print.
  returned: always
  type: list
  elements: str
  sample:
    - "payments: PERMISSIVE (payments/default), enrolled, 2 pod(s), 0 without proxy"
"""

import base64
import datetime

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.kubecrypt.pod_encryption.plugins.module_utils._istio_ca import (
    CA_KEY,
    CRYPTOGRAPHY_IMPORT_ERROR,
    CRYPTOGRAPHY_REQUIREMENT,
    HAS_CRYPTOGRAPHY,
    CAError,
    validate_bundle,
)
from ansible_collections.kubecrypt.pod_encryption.plugins.module_utils._k8s_compat import (
    ApiError,
    ObjectStore,
    auth_argument_spec,
    connect,
    new_module,
)
from ansible_collections.kubecrypt.pod_encryption.plugins.module_utils._mesh_policy import (
    PROFILES,
    MeshPolicyError,
    has_proxy,
    is_enrolled,
    istiod_name,
    migration_message,
    namespace_mode,
    overlay_policies,
    risky_destination_rules,
    summary_line,
    unmeshed_pods,
    unmeshed_workloads,
    workload_mode,
)

DESTINATION_RULE_APIS = ("networking.istio.io/v1", "networking.istio.io/v1beta1")


def argument_spec():
    spec = auth_argument_spec()
    spec.update(
        namespaces=dict(type="list", elements="str", default=[]),
        root_namespace=dict(type="str", default="istio-system"),
        istiod_namespace=dict(type="str", default="istio-system"),
        revision=dict(type="str", default=""),
        profile=dict(type="str", choices=list(PROFILES), default="sidecar"),
        planned_policies=dict(type="list", elements="dict", default=[]),
        cacerts_name=dict(type="str", default="cacerts"),
    )
    return spec


def list_optional(client, kind, api_version):
    """Return the objects of a kind, or None when the API does not serve it."""
    try:
        return ObjectStore(client, kind, api_version).list()
    except ApiError as exc:
        if exc.status == 404:
            return None
        raise


def read_destination_rules(client):
    for api_version in DESTINATION_RULE_APIS:
        rules = list_optional(client, "DestinationRule", api_version)
        if rules is not None:
            return rules
    return None


def read_istiod(client, namespace, revision):
    name = istiod_name(revision)
    deployment = ObjectStore(client, "Deployment", "apps/v1").get(name, namespace)
    conditions = ((deployment or {}).get("status") or {}).get("conditions") or []
    ready = any(
        condition.get("type") == "Available" and condition.get("status") == "True"
        for condition in conditions
    )
    return {"name": name, "found": deployment is not None, "ready": ready}


def read_cacerts(module, client, name, namespace):
    """Validate the plug-in CA Secret and return its metadata, never the key."""
    if not name:
        return {"found": False, "valid": False, "problem": "not checked"}
    secret = ObjectStore(client, "Secret", "v1").get(name, namespace)
    if secret is None:
        return {"found": False, "valid": False, "problem": None}

    files = {
        key: base64.b64decode(value)
        for key, value in (secret.get("data") or {}).items()
    }
    if files.get(CA_KEY):
        # Ansible masks this text in everything it prints, behind the rule that no
        # result field carries the key.
        module._module.no_log_values.add(
            files[CA_KEY].decode("utf-8", "replace").strip()
        )
    now = datetime.datetime.now(datetime.timezone.utc)
    try:
        bundle = validate_bundle(files, now)
    except CAError as exc:
        return {"found": True, "valid": False, "problem": str(exc)}
    result = {"found": True, "valid": True, "problem": None}
    result.update(bundle.describe(now))
    return result


def describe_namespaces(names, namespace_objects, pods, policies, root_ns, profile):
    entries = []
    for name in names:
        found = namespace_objects.get(name)
        in_namespace = [
            pod
            for pod in pods
            if pod["metadata"]["namespace"] == name
            and (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
        ]
        mode, source = namespace_mode(name, policies, root_ns)
        workload_modes = {}
        for pod in in_namespace:
            effective = workload_mode(pod, policies, root_ns)
            if effective["source"] != source or effective["ports"]:
                workload_modes[pod["metadata"]["name"]] = effective["mode"]
        entries.append(
            {
                "name": name,
                "found": found is not None,
                "enrolled": found is not None and is_enrolled(found),
                "mode": mode,
                "source": source,
                "pods": len(in_namespace),
                "unmeshed_pods": sorted(
                    pod["metadata"]["name"]
                    for pod in in_namespace
                    if not has_proxy(pod, profile)
                ),
                "workload_modes": workload_modes,
            }
        )
    return entries


def read_snapshot(module, client, params):
    policies = list_optional(client, "PeerAuthentication", "security.istio.io/v1") or []
    namespace_objects = {
        item["metadata"]["name"]: item
        for item in ObjectStore(client, "Namespace", "v1").list()
    }
    pods = []
    replicasets = {}
    for name in params["namespaces"]:
        if name not in namespace_objects:
            continue
        pods.extend(ObjectStore(client, "Pod", "v1").list(namespace=name))
        for replicaset in ObjectStore(client, "ReplicaSet", "apps/v1").list(
            namespace=name
        ):
            replicasets["{0}/{1}".format(name, replicaset["metadata"]["name"])] = (
                replicaset
            )
    return {
        "policies": overlay_policies(policies, params["planned_policies"]),
        "namespaces": namespace_objects,
        "pods": pods,
        "replicasets": replicasets,
        "destination_rules": read_destination_rules(client),
        "istiod": read_istiod(client, params["istiod_namespace"], params["revision"]),
        "cacerts": read_cacerts(
            module, client, params["cacerts_name"], params["istiod_namespace"]
        ),
    }


def evaluate(snapshot, params):
    root_ns = params["root_namespace"]
    profile = params["profile"]
    names = params["namespaces"]
    policies = snapshot["policies"]

    entries = describe_namespaces(
        names, snapshot["namespaces"], snapshot["pods"], policies, root_ns, profile
    )
    strict_unmeshed = unmeshed_pods(snapshot["pods"], policies, root_ns, names, profile)
    meshed = [entry["name"] for entry in entries if entry["enrolled"]]
    rules = snapshot["destination_rules"]
    mesh_mode, mesh_source = namespace_mode(root_ns, policies, root_ns)
    return {
        "mesh": {"mode": mesh_mode, "source": mesh_source},
        "namespaces": entries,
        "unmeshed_pods": strict_unmeshed,
        "migration_message": migration_message(strict_unmeshed, profile),
        "unmeshed_workloads": unmeshed_workloads(
            snapshot["pods"], snapshot["replicasets"], names, profile
        ),
        "destination_rules": {
            "served": rules is not None,
            "risky": risky_destination_rules(rules or [], meshed),
        },
        "istiod": snapshot["istiod"],
        "cacerts": snapshot["cacerts"],
        "summary": [summary_line(entry) for entry in entries],
    }


def main():
    module = new_module(argument_spec=argument_spec(), supports_check_mode=True)
    if not HAS_CRYPTOGRAPHY:
        module.fail_json(
            msg=missing_required_lib(CRYPTOGRAPHY_REQUIREMENT),
            exception=CRYPTOGRAPHY_IMPORT_ERROR,
        )
    try:
        client = connect(module)
        snapshot = read_snapshot(module, client, module.params)
    except (ApiError, MeshPolicyError) as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, **evaluate(snapshot, module.params))


if __name__ == "__main__":
    main()
