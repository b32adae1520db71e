# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kubecrypt maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Istio mutual TLS decisions on plain dicts: policies, enrolment labels and posture.

Nothing here talks to the cluster. The istio_mtls role reaches these functions through the
mesh_policy filter plugin and the mesh_info module.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import re

MODES = ("STRICT", "PERMISSIVE", "DISABLE", "UNSET")
PROFILES = ("sidecar", "ambient")
PEER_AUTHENTICATION_API = "security.istio.io/v1"
MANAGED_BY = {"app.kubernetes.io/managed-by": "kubecrypt.pod_encryption"}
PROXY_CONTAINER = "istio-proxy"
REDIRECTION_ANNOTATION = "ambient.istio.io/redirection"
INJECTION_LABEL = "istio-injection"
REVISION_LABEL = "istio.io/rev"
DATAPLANE_LABEL = "istio.io/dataplane-mode"
RISKY_TLS_MODES = ("DISABLE", "SIMPLE")
# Sorts after every RFC 3339 timestamp, so a planned policy counts as the newest one.
NOT_YET_CREATED = "9999-12-31T23:59:59Z"


_DNS_LABEL = re.compile(r"\A[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")


class MeshPolicyError(Exception):
    """An invalid mutual TLS request; the message names the value and the fix."""


def _check_mode(mode, where):
    if mode not in MODES:
        raise MeshPolicyError(
            "{0} sets the mode {1!r}, which is invalid. Use one of {2}.".format(
                where, mode, ", ".join(MODES)
            )
        )


def validate_workload_policy(policy, root_namespace):
    """Raise MeshPolicyError when Istio would ignore or reject the workload policy."""
    name = policy.get("name")
    namespace = policy.get("namespace")
    if not name or not namespace:
        raise MeshPolicyError(
            "An istio_mtls_workload_policies entry lacks a name or a namespace: {0!r}. "
            "Set both.".format(policy)
        )

    where = "PeerAuthentication {0}/{1}".format(namespace, name)
    selector = policy.get("selector") or {}
    port_level = policy.get("port_level_mtls") or {}
    if policy.get("mode") is not None:
        _check_mode(policy["mode"], where)
    if selector and namespace == root_namespace:
        raise MeshPolicyError(
            "{0} has a selector but is in the root namespace {1}, where Istio ignores "
            "policies with a selector. Move it to the namespace of the workloads it "
            "selects.".format(where, root_namespace)
        )
    if port_level and not selector:
        raise MeshPolicyError(
            "{0} sets port_level_mtls without a selector, which Istio rejects. Add a "
            "selector with the labels of the workloads, or remove port_level_mtls.".format(
                where
            )
        )

    for port, mode in port_level.items():
        if not str(port).isdigit() or not 1 <= int(port) <= 65535:
            raise MeshPolicyError(
                "{0} has the port_level_mtls key {1!r}, which is not a port from 1 to "
                "65535. Use the container port of the workload.".format(where, port)
            )
        _check_mode(mode, "{0} port {1}".format(where, port))


def _definition(name, namespace, spec):
    return {
        "apiVersion": PEER_AUTHENTICATION_API,
        "kind": "PeerAuthentication",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": dict(MANAGED_BY),
        },
        "spec": spec,
    }


def _workload_definition(policy):
    spec = {"selector": {"matchLabels": dict(policy["selector"])}}
    if policy.get("mode") is not None:
        spec["mtls"] = {"mode": policy["mode"]}
    port_level = policy.get("port_level_mtls") or {}
    if port_level:
        spec["portLevelMtls"] = {
            str(port): {"mode": mode} for port, mode in sorted(port_level.items())
        }
    return _definition(policy["name"], policy["namespace"], spec)


def peer_authentications(mesh_mode, root_namespace, namespaces, workload_policies):
    """Return the PeerAuthentication definitions for the mesh, namespaces and workloads.

    Raise MeshPolicyError on a request that Istio would ignore or reject.
    """
    _check_mode(mesh_mode, "istio_mtls_mode")
    definitions = [
        _definition("default", root_namespace, {"mtls": {"mode": mesh_mode}})
    ]

    for entry in namespaces or []:
        if not entry.get("mode"):
            continue
        _check_mode(
            entry["mode"], "istio_mtls_namespaces entry {0}".format(entry["name"])
        )
        if entry["name"] == root_namespace:
            raise MeshPolicyError(
                "istio_mtls_namespaces entry {0} sets a mode in the root namespace, where "
                "it would replace the mesh-wide PeerAuthentication. Set istio_mtls_mode "
                "instead.".format(entry["name"])
            )
        definitions.append(
            _definition("default", entry["name"], {"mtls": {"mode": entry["mode"]}})
        )

    for policy in workload_policies or []:
        validate_workload_policy(policy, root_namespace)
        definitions.append(_workload_definition(policy))

    seen = set()
    for definition in definitions:
        key = (definition["metadata"]["namespace"], definition["metadata"]["name"])
        if key in seen:
            raise MeshPolicyError(
                "PeerAuthentication {0}/{1} is requested twice. Give each policy its own "
                "name; the namespace-wide policy is named default.".format(*key)
            )
        seen.add(key)
    return definitions


def enrolment_labels(profile, revision, enabled=True):
    """Return the namespace labels that enrol it, with None for labels to remove.

    istio-injection=enabled only selects the default revision and beats istio.io/rev,
    so a namespace never carries both.
    """
    if profile not in PROFILES:
        raise MeshPolicyError(
            "istio_mtls_profile is {0!r}, which is invalid. Use sidecar or ambient.".format(
                profile
            )
        )
    labels = {INJECTION_LABEL: None, REVISION_LABEL: None, DATAPLANE_LABEL: None}
    if profile == "ambient":
        labels[DATAPLANE_LABEL] = "ambient" if enabled else "none"
        if enabled and revision:
            labels[REVISION_LABEL] = revision
    elif not enabled:
        labels[INJECTION_LABEL] = "disabled"
    elif revision:
        labels[REVISION_LABEL] = revision
    else:
        labels[INJECTION_LABEL] = "enabled"
    return labels


def _merge(base, extra):
    merged = copy.deepcopy(base)
    for key, value in (extra or {}).items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def root_namespace(istiod_values, default):
    """Return meshConfig.rootNamespace from the istiod values, else ``default``."""
    mesh_config = (istiod_values or {}).get("meshConfig") or {}
    return mesh_config.get("rootNamespace") or default


def istiod_values(
    values, default_root_namespace, revision, profile, rotation_values=None
):
    """Return the istiod chart values: the user's values plus what the role decides.

    ``rotation_values`` are merged under the user's values, so an explicit user value wins.
    """
    decided = {
        "meshConfig": {"rootNamespace": root_namespace(values, default_root_namespace)}
    }
    if revision:
        decided["revision"] = revision
    if profile == "ambient":
        decided["profile"] = "ambient"
    merged = _merge(rotation_values or {}, values or {})
    return _merge(merged, decided)


def istiod_name(revision):
    """Return the istiod Deployment name of ``revision``, rejecting revisions Kubernetes would."""
    if not revision:
        return "istiod"
    name = "istiod-{0}".format(revision)
    # The charts name a Deployment, a Service and a ServiceAccount after the revision, so
    # istiod-<revision> must be a DNS-1123 label.
    if len(name) > 63 or not _DNS_LABEL.match(name):
        raise MeshPolicyError(
            "Revision {0!r} is invalid: istiod-<revision> must be a DNS label of at most 63 "
            "characters, that is lowercase letters, digits and '-', ending in a letter or a "
            "digit. Use for example 1-30-3 or canary.".format(revision)
        )
    return name


def _created(policy):
    return policy.get("metadata", {}).get("creationTimestamp") or NOT_YET_CREATED


def _oldest(policies):
    """Return the policy Istio applies among duplicates: the oldest, then by name."""
    # NOTE: the name as a tie-break for equal timestamps follows istiod's sort as far as
    # known; Istio's documentation only states that the oldest policy wins.
    if not policies:
        return None
    return sorted(policies, key=lambda p: (_created(p), p["metadata"]["name"]))[0]


def _selector(policy):
    return ((policy.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}


def _mode(policy):
    if policy is None:
        return None
    mode = ((policy.get("spec") or {}).get("mtls") or {}).get("mode")
    return None if mode in (None, "UNSET") else mode


def _policy_id(policy):
    return "{0}/{1}".format(policy["metadata"]["namespace"], policy["metadata"]["name"])


def overlay_policies(existing, planned):
    """Return the policies as they will be once ``planned`` is applied.

    A planned policy keeps the creationTimestamp of the policy it replaces, and a new one
    counts as the newest.
    """
    by_key = {}
    for policy in existing or []:
        by_key[(policy["metadata"]["namespace"], policy["metadata"]["name"])] = policy
    for policy in planned or []:
        key = (policy["metadata"]["namespace"], policy["metadata"]["name"])
        merged = copy.deepcopy(policy)
        current = by_key.get(key)
        if current is not None and current["metadata"].get("creationTimestamp"):
            merged["metadata"]["creationTimestamp"] = current["metadata"][
                "creationTimestamp"
            ]
        by_key[key] = merged
    return [by_key[key] for key in sorted(by_key)]


def namespace_mode(namespace, policies, root_ns):
    """Return (mode, source) for pods in ``namespace`` that no workload policy selects.

    The namespace-wide policy beats the mesh-wide one, UNSET inherits, and without any
    policy the mode is PERMISSIVE. ``source`` names the deciding policy, or None.
    """
    mesh = _oldest(
        [
            p
            for p in policies
            if p["metadata"]["namespace"] == root_ns and not _selector(p)
        ]
    )
    scoped = None
    if namespace != root_ns:
        scoped = _oldest(
            [
                p
                for p in policies
                if p["metadata"]["namespace"] == namespace and not _selector(p)
            ]
        )
    for policy in (scoped, mesh):
        mode = _mode(policy)
        if mode is not None:
            return mode, _policy_id(policy)
    return "PERMISSIVE", None


def _labels_match(match_labels, labels):
    return all(labels.get(key) == value for key, value in match_labels.items())


def workload_mode(pod, policies, root_ns):
    """Return the effective mode of a pod: {mode, source, ports}.

    A workload policy in the pod's namespace beats the namespace and the mesh. Istio
    ignores workload policies in the root namespace. Among several matching workload
    policies the oldest applies. ``ports`` maps a port to its mode, with UNSET inherited.
    """
    namespace = pod["metadata"]["namespace"]
    labels = pod["metadata"].get("labels") or {}
    mode, source = namespace_mode(namespace, policies, root_ns)
    ports = {}
    if namespace == root_ns:
        return {"mode": mode, "source": source, "ports": ports}

    matching = [
        p
        for p in policies
        if p["metadata"]["namespace"] == namespace
        and _selector(p)
        and _labels_match(_selector(p), labels)
    ]
    workload = _oldest(matching)
    if workload is not None:
        if _mode(workload) is not None:
            mode, source = _mode(workload), _policy_id(workload)
        for port, setting in sorted(
            ((workload.get("spec") or {}).get("portLevelMtls") or {}).items()
        ):
            port_mode = (setting or {}).get("mode")
            ports[str(port)] = mode if port_mode in (None, "UNSET") else port_mode
    return {"mode": mode, "source": source, "ports": ports}


def has_proxy(pod, profile):
    """Tell whether the pod's traffic goes through Istio.

    A pod with an istio-proxy container, also as a native sidecar in initContainers, is
    meshed in either profile. In ambient a pod is also meshed when the CNI marked it with
    ambient.istio.io/redirection=enabled.
    """
    spec = pod.get("spec") or {}
    containers = (spec.get("containers") or []) + (spec.get("initContainers") or [])
    if any(container.get("name") == PROXY_CONTAINER for container in containers):
        return True
    if profile == "ambient":
        annotations = pod["metadata"].get("annotations") or {}
        return annotations.get(REDIRECTION_ANNOTATION) == "enabled"
    return False


def _is_strict(effective):
    return effective["mode"] == "STRICT" or "STRICT" in effective["ports"].values()


def _is_finished(pod):
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def unmeshed_pods(pods, policies, root_ns, namespaces, profile):
    """Return the running pods in ``namespaces`` without a proxy in a STRICT scope.

    Each entry is {namespace, name, mode, source}, sorted by namespace and name.
    """
    found = []
    for pod in pods:
        if pod["metadata"]["namespace"] not in namespaces or _is_finished(pod):
            continue
        if has_proxy(pod, profile):
            continue
        effective = workload_mode(pod, policies, root_ns)
        if _is_strict(effective):
            found.append(
                {
                    "namespace": pod["metadata"]["namespace"],
                    "name": pod["metadata"]["name"],
                    "mode": effective["mode"],
                    "source": effective["source"],
                }
            )
    return sorted(found, key=lambda entry: (entry["namespace"], entry["name"]))


def migration_message(pods, profile):
    """Return the message that lists un-meshed pods in STRICT scopes, or None."""
    if not pods:
        return None
    names = ", ".join("{0}/{1}".format(pod["namespace"], pod["name"]) for pod in pods)
    if profile == "sidecar":
        missing = "the istio-proxy container"
        remedy = "Restart them after enrolment, or set istio_mtls_restart_unmeshed to true"
    else:
        missing = "ambient redirection (annotation ambient.istio.io/redirection=enabled)"
        remedy = (
            "Check that istio-cni runs on their nodes and that the pods do not opt out with "
            "istio.io/dataplane-mode=none, or raise istio_mtls_redirection_timeout"
        )
    return (
        "{0} pod(s) without {1} would be in a STRICT scope and lose plain-text traffic: "
        "{2}. {3}, or give their namespace the mode PERMISSIVE, or set "
        "istio_mtls_unmeshed_pods to warn.".format(len(pods), missing, names, remedy)
    )


def workload_of(pod, replicasets):
    """Return (kind, name) of the Deployment, StatefulSet or DaemonSet that owns the pod.

    ``replicasets`` maps "namespace/name" to a ReplicaSet. Return None for other pods.
    """
    for owner in pod["metadata"].get("ownerReferences") or []:
        if owner.get("kind") in ("StatefulSet", "DaemonSet"):
            return owner["kind"], owner["name"]
        if owner.get("kind") == "ReplicaSet":
            key = "{0}/{1}".format(pod["metadata"]["namespace"], owner["name"])
            replicaset = replicasets.get(key) or {}
            for parent in replicaset.get("metadata", {}).get("ownerReferences") or []:
                if parent.get("kind") == "Deployment":
                    return "Deployment", parent["name"]
    return None


def unmeshed_workloads(pods, replicasets, namespaces, profile):
    """Return the workloads in ``namespaces`` with a running pod that lacks the proxy."""
    found = set()
    for pod in pods:
        if pod["metadata"]["namespace"] not in namespaces or _is_finished(pod):
            continue
        if has_proxy(pod, profile):
            continue
        owner = workload_of(pod, replicasets)
        if owner is not None:
            found.add((pod["metadata"]["namespace"], owner[0], owner[1]))
    return [
        {"namespace": namespace, "kind": kind, "name": name}
        for namespace, kind, name in sorted(found)
    ]


def is_enrolled(namespace_object):
    labels = namespace_object["metadata"].get("labels") or {}
    if labels.get(DATAPLANE_LABEL) == "ambient":
        return True
    if labels.get(INJECTION_LABEL) == "enabled":
        return True
    return (
        bool(labels.get(REVISION_LABEL)) and labels.get(INJECTION_LABEL) != "disabled"
    )


def _host_namespace(host, rule_namespace):
    """Return the namespace a DestinationRule host points at, or None for other hosts."""
    parts = host.split(".")
    if len(parts) == 1 and host != "*":
        return rule_namespace
    if len(parts) == 2 or (len(parts) > 2 and parts[2] == "svc"):
        return parts[1]
    return None


def _tls_modes(rule):
    policy = (rule.get("spec") or {}).get("trafficPolicy") or {}
    modes = [(policy.get("tls") or {}).get("mode")]
    for setting in policy.get("portLevelSettings") or []:
        modes.append((setting.get("tls") or {}).get("mode"))
    return [mode for mode in modes if mode in RISKY_TLS_MODES]


def risky_destination_rules(rules, meshed_namespaces):
    """Return DestinationRules whose TLS mode DISABLE or SIMPLE overrides auto mTLS
    towards a host in a meshed namespace. Each entry is {namespace, name, host, modes}.
    """
    found = []
    for rule in rules:
        modes = _tls_modes(rule)
        host = (rule.get("spec") or {}).get("host") or ""
        target = _host_namespace(host, rule["metadata"]["namespace"])
        if modes and target in meshed_namespaces:
            found.append(
                {
                    "namespace": rule["metadata"]["namespace"],
                    "name": rule["metadata"]["name"],
                    "host": host,
                    "modes": sorted(set(modes)),
                }
            )
    return found


def summary_line(entry):
    """Return the one-line verification summary of a namespace entry of mesh_info."""
    line = "{0}: {1} ({2}), {3}, {4} pod(s), {5} without proxy".format(
        entry["name"],
        entry["mode"],
        entry["source"] or "no policy",
        "enrolled" if entry["enrolled"] else "not enrolled",
        entry["pods"],
        len(entry["unmeshed_pods"]),
    )
    if entry["workload_modes"]:
        line += ", workload policies: " + ", ".join(
            "{0}={1}".format(name, mode)
            for name, mode in sorted(entry["workload_modes"].items())
        )
    return line
