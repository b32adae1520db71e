"""Unit tests for the Istio mutual TLS decisions in module_utils/_mesh_policy.py.

The inputs are plain dicts shaped like the objects the Kubernetes API returns.
"""

import pytest

from ansible_collections.kubecrypt.pod_encryption.plugins.module_utils._mesh_policy import (
    MeshPolicyError,
    enrolment_labels,
    has_proxy,
    istiod_name,
    istiod_values,
    migration_message,
    namespace_mode,
    overlay_policies,
    peer_authentications,
    risky_destination_rules,
    unmeshed_pods,
    unmeshed_workloads,
    workload_mode,
)

ROOT = "istio-system"


def policy(
    namespace,
    name,
    mode=None,
    selector=None,
    ports=None,
    created="2026-01-01T00:00:00Z",
):
    spec = {}
    if mode is not None:
        spec["mtls"] = {"mode": mode}
    if selector:
        spec["selector"] = {"matchLabels": selector}
    if ports:
        spec["portLevelMtls"] = {
            str(port): {"mode": value} for port, value in ports.items()
        }
    return {
        "metadata": {
            "namespace": namespace,
            "name": name,
            "creationTimestamp": created,
        },
        "spec": spec,
    }


def pod(
    namespace,
    name,
    labels=None,
    containers=("app",),
    annotations=None,
    phase="Running",
    owner=None,
):
    metadata = {"namespace": namespace, "name": name, "labels": labels or {}}
    if annotations:
        metadata["annotations"] = annotations
    if owner:
        metadata["ownerReferences"] = [{"kind": owner[0], "name": owner[1]}]
    return {
        "metadata": metadata,
        "spec": {"containers": [{"name": container} for container in containers]},
        "status": {"phase": phase},
    }


# Precedence


def test_no_policy_is_permissive():
    assert namespace_mode("shop", [], ROOT) == ("PERMISSIVE", None)


def test_mesh_policy_applies_to_namespace():
    policies = [policy(ROOT, "default", "STRICT")]
    assert namespace_mode("shop", policies, ROOT) == ("STRICT", "istio-system/default")


def test_namespace_beats_mesh():
    policies = [
        policy(ROOT, "default", "STRICT"),
        policy("shop", "default", "PERMISSIVE"),
    ]
    assert namespace_mode("shop", policies, ROOT) == ("PERMISSIVE", "shop/default")


def test_namespace_unset_inherits_mesh():
    policies = [policy(ROOT, "default", "STRICT"), policy("shop", "default", "UNSET")]
    assert namespace_mode("shop", policies, ROOT) == ("STRICT", "istio-system/default")


def test_workload_beats_namespace_and_mesh():
    policies = [
        policy(ROOT, "default", "STRICT"),
        policy("shop", "default", "STRICT"),
        policy("shop", "legacy", "PERMISSIVE", selector={"app": "legacy"}),
    ]
    legacy = workload_mode(pod("shop", "legacy-1", {"app": "legacy"}), policies, ROOT)
    other = workload_mode(pod("shop", "web-1", {"app": "web"}), policies, ROOT)
    assert legacy["mode"] == "PERMISSIVE"
    assert legacy["source"] == "shop/legacy"
    assert other["mode"] == "STRICT"
    assert other["source"] == "shop/default"


def test_workload_unset_inherits_namespace():
    policies = [
        policy("shop", "default", "STRICT"),
        policy(
            "shop",
            "ports",
            "UNSET",
            selector={"app": "hook"},
            ports={9443: "PERMISSIVE"},
        ),
    ]
    effective = workload_mode(pod("shop", "hook-1", {"app": "hook"}), policies, ROOT)
    assert effective["mode"] == "STRICT"
    assert effective["ports"] == {"9443": "PERMISSIVE"}


def test_port_unset_inherits_workload_mode():
    policies = [
        policy(
            "shop", "hook", "STRICT", selector={"app": "hook"}, ports={8080: "UNSET"}
        )
    ]
    effective = workload_mode(pod("shop", "hook-1", {"app": "hook"}), policies, ROOT)
    assert effective["ports"] == {"8080": "STRICT"}


def test_oldest_namespace_policy_wins():
    policies = [
        policy("shop", "newer", "STRICT", created="2026-03-01T00:00:00Z"),
        policy("shop", "older", "DISABLE", created="2026-02-01T00:00:00Z"),
    ]
    assert namespace_mode("shop", policies, ROOT) == ("DISABLE", "shop/older")


def test_oldest_mesh_policy_wins():
    policies = [
        policy(ROOT, "default", "STRICT", created="2026-05-01T00:00:00Z"),
        policy(ROOT, "legacy", "PERMISSIVE", created="2025-05-01T00:00:00Z"),
    ]
    assert namespace_mode("shop", policies, ROOT) == (
        "PERMISSIVE",
        "istio-system/legacy",
    )


def test_oldest_workload_policy_wins():
    policies = [
        policy(
            "shop",
            "b-new",
            "DISABLE",
            selector={"app": "web"},
            created="2026-04-01T00:00:00Z",
        ),
        policy(
            "shop",
            "a-old",
            "STRICT",
            selector={"tier": "front"},
            created="2026-01-01T00:00:00Z",
        ),
    ]
    web = pod("shop", "web-1", {"app": "web", "tier": "front"})
    assert workload_mode(web, policies, ROOT)["source"] == "shop/a-old"
    assert workload_mode(web, policies, ROOT)["mode"] == "STRICT"


def test_selector_policy_in_root_namespace_is_ignored():
    policies = [
        policy(ROOT, "default", "PERMISSIVE"),
        policy(ROOT, "web", "STRICT", selector={"app": "web"}),
    ]
    effective = workload_mode(pod("shop", "web-1", {"app": "web"}), policies, ROOT)
    assert effective["mode"] == "PERMISSIVE"
    assert effective["source"] == "istio-system/default"


def test_planned_policy_keeps_creation_time():
    existing = [policy("shop", "default", "PERMISSIVE", created="2026-01-01T00:00:00Z")]
    planned = peer_authentications(
        "STRICT", ROOT, [{"name": "shop", "mode": "STRICT"}], []
    )
    merged = overlay_policies(existing, planned)
    shop = [p for p in merged if p["metadata"]["namespace"] == "shop"]
    assert len(shop) == 1
    assert shop[0]["metadata"]["creationTimestamp"] == "2026-01-01T00:00:00Z"
    assert namespace_mode("shop", merged, ROOT) == ("STRICT", "shop/default")


def test_new_planned_policy_loses_to_older_one():
    existing = [policy("shop", "first", "PERMISSIVE", created="2026-01-01T00:00:00Z")]
    planned = peer_authentications(
        "STRICT", ROOT, [{"name": "shop", "mode": "STRICT"}], []
    )
    merged = overlay_policies(existing, planned)
    assert namespace_mode("shop", merged, ROOT) == ("PERMISSIVE", "shop/first")


# Validation


def test_selector_in_root_namespace_rejected():
    with pytest.raises(MeshPolicyError) as error:
        peer_authentications(
            "STRICT",
            ROOT,
            [],
            [{"name": "web", "namespace": ROOT, "selector": {"app": "web"}}],
        )
    assert str(error.value) == (
        "PeerAuthentication istio-system/web has a selector but is in the root namespace "
        "istio-system, where Istio ignores policies with a selector. Move it to the namespace "
        "of the workloads it selects."
    )


def test_port_level_without_selector_rejected():
    with pytest.raises(MeshPolicyError) as error:
        peer_authentications(
            "STRICT",
            ROOT,
            [],
            [
                {
                    "name": "hook",
                    "namespace": "shop",
                    "port_level_mtls": {9443: "PERMISSIVE"},
                }
            ],
        )
    assert str(error.value) == (
        "PeerAuthentication shop/hook sets port_level_mtls without a selector, which Istio "
        "rejects. Add a selector with the labels of the workloads, or remove port_level_mtls."
    )


def test_invalid_mode_rejected():
    with pytest.raises(MeshPolicyError) as error:
        peer_authentications("STRICT", ROOT, [{"name": "shop", "mode": "strict"}], [])
    assert str(error.value) == (
        "istio_mtls_namespaces entry shop sets the mode 'strict', which is invalid. Use one of "
        "STRICT, PERMISSIVE, DISABLE, UNSET."
    )


def test_invalid_port_rejected():
    with pytest.raises(MeshPolicyError) as error:
        peer_authentications(
            "STRICT",
            ROOT,
            [],
            [
                {
                    "name": "hook",
                    "namespace": "shop",
                    "selector": {"app": "hook"},
                    "port_level_mtls": {70000: "PERMISSIVE"},
                }
            ],
        )
    assert str(error.value) == (
        "PeerAuthentication shop/hook has the port_level_mtls key 70000, which is not a port "
        "from 1 to 65535. Use the container port of the workload."
    )


def test_root_namespace_mode_rejected():
    with pytest.raises(MeshPolicyError) as error:
        peer_authentications("STRICT", ROOT, [{"name": ROOT, "mode": "PERMISSIVE"}], [])
    assert "Set istio_mtls_mode instead." in str(error.value)


def test_duplicate_policy_rejected():
    with pytest.raises(MeshPolicyError) as error:
        peer_authentications(
            "STRICT",
            ROOT,
            [{"name": "shop", "mode": "STRICT"}],
            [{"name": "default", "namespace": "shop", "selector": {"app": "a"}}],
        )
    assert str(error.value).startswith(
        "PeerAuthentication shop/default is requested twice."
    )


def test_workload_policy_definition():
    definitions = peer_authentications(
        "STRICT",
        ROOT,
        [],
        [
            {
                "name": "hook",
                "namespace": "shop",
                "selector": {"app": "hook"},
                "mode": "STRICT",
                "port_level_mtls": {9443: "PERMISSIVE"},
            }
        ],
    )
    assert len(definitions) == 2
    assert definitions[0]["metadata"] == {
        "name": "default",
        "namespace": ROOT,
        "labels": {"app.kubernetes.io/managed-by": "kubecrypt.pod_encryption"},
    }
    assert definitions[1]["spec"] == {
        "selector": {"matchLabels": {"app": "hook"}},
        "mtls": {"mode": "STRICT"},
        "portLevelMtls": {"9443": {"mode": "PERMISSIVE"}},
    }


# Enrolment and istiod values


def test_default_revision_uses_injection_label():
    assert enrolment_labels("sidecar", "") == {
        "istio-injection": "enabled",
        "istio.io/rev": None,
        "istio.io/dataplane-mode": None,
    }


def test_revision_removes_injection_label():
    assert enrolment_labels("sidecar", "canary") == {
        "istio-injection": None,
        "istio.io/rev": "canary",
        "istio.io/dataplane-mode": None,
    }


def test_ambient_uses_dataplane_mode():
    labels = enrolment_labels("ambient", "")
    assert labels["istio.io/dataplane-mode"] == "ambient"
    assert labels["istio-injection"] is None


def test_unknown_profile_rejected():
    with pytest.raises(MeshPolicyError):
        enrolment_labels("waypoint", "")


def test_istiod_values_keep_user_root_namespace():
    values = istiod_values(
        {"meshConfig": {"rootNamespace": "mesh-root"}}, ROOT, "canary", "ambient"
    )
    assert values["meshConfig"]["rootNamespace"] == "mesh-root"
    assert values["revision"] == "canary"
    assert values["profile"] == "ambient"


def test_istiod_values_merge_rotation_under_user_values():
    rotation = {"pilot": {"env": {"ISTIO_MULTIROOT_MESH": "true"}}}
    user = {"pilot": {"env": {"OTHER": "1"}}}
    values = istiod_values(user, ROOT, "", "sidecar", rotation)
    assert values["pilot"]["env"] == {"ISTIO_MULTIROOT_MESH": "true", "OTHER": "1"}
    assert values["meshConfig"] == {"rootNamespace": ROOT}
    assert "revision" not in values
    assert "profile" not in values


# Un-meshed pods


def test_sidecar_pod_has_proxy():
    assert has_proxy(pod("shop", "a", containers=("app", "istio-proxy")), "sidecar")


def test_native_sidecar_counts_as_proxy():
    native = pod("shop", "a")
    native["spec"]["initContainers"] = [{"name": "istio-proxy"}]
    assert has_proxy(native, "sidecar")


def test_ambient_redirection_counts_only_in_ambient():
    redirected = pod(
        "shop", "a", annotations={"ambient.istio.io/redirection": "enabled"}
    )
    assert has_proxy(redirected, "ambient")
    assert not has_proxy(redirected, "sidecar")


def test_unmeshed_pods_in_strict_scope():
    policies = [
        policy(ROOT, "default", "STRICT"),
        policy("legacy", "default", "PERMISSIVE"),
        policy(
            "shop",
            "hook",
            "PERMISSIVE",
            selector={"app": "hook"},
            ports={9443: "STRICT"},
        ),
    ]
    pods = [
        pod("shop", "web-2"),
        pod("shop", "web-1"),
        pod("shop", "meshed", containers=("app", "istio-proxy")),
        pod("shop", "done", phase="Succeeded"),
        pod("shop", "hook-1", {"app": "hook"}),
        pod("legacy", "old-1"),
        pod("elsewhere", "x"),
    ]
    found = unmeshed_pods(pods, policies, ROOT, ["shop", "legacy"], "sidecar")
    assert [entry["name"] for entry in found] == ["hook-1", "web-1", "web-2"]
    assert found[1] == {
        "namespace": "shop",
        "name": "web-1",
        "mode": "STRICT",
        "source": "istio-system/default",
    }


def test_migration_message_lists_pods():
    pods = [
        {"namespace": "shop", "name": "web-1"},
        {"namespace": "shop", "name": "web-2"},
    ]
    assert migration_message(pods, "sidecar") == (
        "2 pod(s) without the istio-proxy container would be in a STRICT scope and lose "
        "plain-text traffic: shop/web-1, shop/web-2. Restart them after enrolment, or set "
        "istio_mtls_restart_unmeshed to true, or give their namespace the mode PERMISSIVE, "
        "or set istio_mtls_unmeshed_pods to warn."
    )
    assert migration_message([], "sidecar") is None


def test_migration_message_ambient_remedy():
    message = migration_message([{"namespace": "shop", "name": "web-1"}], "ambient")
    assert message == (
        "1 pod(s) without ambient redirection (annotation ambient.istio.io/redirection=enabled) "
        "would be in a STRICT scope and lose plain-text traffic: shop/web-1. Check that "
        "istio-cni runs on their nodes and that the pods do not opt out with "
        "istio.io/dataplane-mode=none, or raise istio_mtls_redirection_timeout, or give their "
        "namespace the mode PERMISSIVE, or set istio_mtls_unmeshed_pods to warn."
    )


def test_unmeshed_workloads_resolve_owners():
    replicasets = {
        "shop/web-abc": {
            "metadata": {"ownerReferences": [{"kind": "Deployment", "name": "web"}]}
        }
    }
    pods = [
        pod("shop", "web-abc-1", owner=("ReplicaSet", "web-abc")),
        pod("shop", "web-abc-2", owner=("ReplicaSet", "web-abc")),
        pod("shop", "db-0", owner=("StatefulSet", "db")),
        pod("shop", "bare"),
        pod(
            "shop", "meshed", containers=("istio-proxy",), owner=("DaemonSet", "agent")
        ),
    ]
    assert unmeshed_workloads(pods, replicasets, ["shop"], "sidecar") == [
        {"namespace": "shop", "kind": "Deployment", "name": "web"},
        {"namespace": "shop", "kind": "StatefulSet", "name": "db"},
    ]


def test_risky_destination_rules():
    def rule(namespace, name, host, mode):
        return {
            "metadata": {"namespace": namespace, "name": name},
            "spec": {"host": host, "trafficPolicy": {"tls": {"mode": mode}}},
        }

    rules = [
        rule("shop", "short", "web", "DISABLE"),
        rule("client", "fqdn", "web.shop.svc.cluster.local", "SIMPLE"),
        rule("client", "mutual", "web.shop.svc.cluster.local", "ISTIO_MUTUAL"),
        rule("client", "external", "example.com", "SIMPLE"),
        rule("client", "other", "web.legacy", "DISABLE"),
    ]
    found = risky_destination_rules(rules, ["shop"])
    assert [entry["name"] for entry in found] == ["short", "fqdn"]
    assert found[1]["modes"] == ["SIMPLE"]


@pytest.mark.parametrize("revision, name", [("", "istiod"), ("1-30-3", "istiod-1-30-3"), ("canary", "istiod-canary")])
def test_istiod_name_valid_revisions(revision, name):
    assert istiod_name(revision) == name


@pytest.mark.parametrize("revision", ["Bad_Rev", "canary-", "a.b", "x" * 57])
def test_istiod_name_rejects_revision(revision):
    with pytest.raises(MeshPolicyError) as caught:
        istiod_name(revision)
    assert str(caught.value).startswith("Revision {0!r} is invalid: ".format(revision))
