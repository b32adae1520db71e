"""The istio_mtls role through playbooks/istio.yml on a control plane of its own.

The tests are one scenario and run in file order. They start with input that the role
rejects and a sidecar install with a plug-in CA. The migration check, the DestinationRule
warning, the restart of un-meshed workloads, the intermediate renewal, a renewal that restarts
the enrolled workloads and the root rotation follow. A revision and the switch to the ambient
profile come last.
"""

import base64
import datetime
import json
import re
import threading
import time

import pytest
from cryptography.hazmat.primitives import hashes

from ansible_collections.kubecrypt.pod_encryption.plugins.module_utils._istio_ca import (
    validate_bundle,
)
from harness import kubectl_runner, run_module, run_playbook

PLAYBOOK = "playbooks/istio.yml"
CHARTS = "{{ playbook_dir }}/../tests/fixtures/charts/"
AMBIENT_CHARTS = {
    "istio_mtls_cni_chart_ref": CHARTS + "cni",
    "istio_mtls_ztunnel_chart_ref": CHARTS + "ztunnel",
}
SNAPSHOT_KINDS = "namespaces,secrets,configmaps,daemonsets,deployments"
WORKLOAD_POLICY = {
    "name": "hook",
    "namespace": "shop",
    "selector": {"app": "hook"},
    "mode": "STRICT",
    "port_level_mtls": {"9443": "PERMISSIVE"},
}


@pytest.fixture(scope="module")
def kubectl(empty_cluster):
    run = kubectl_runner(empty_cluster)
    run("create", "namespace", "shop")
    run("create", "namespace", "legacy")
    return run


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    directory = tmp_path_factory.mktemp("roots")
    return {
        "istio_mtls_plugin_ca_root_cert_path": str(directory / "root-cert.pem"),
        "istio_mtls_plugin_ca_root_key_path": str(directory / "root-key.pem"),
        "istio_mtls_plugin_ca_new_root_cert_path": str(directory / "new-root-cert.pem"),
        "istio_mtls_plugin_ca_new_root_key_path": str(directory / "new-root-key.pem"),
    }


def sidecar_vars(roots, **extra):
    variables = {
        "istio_mtls_namespaces": [{"name": "shop"}],
        "istio_mtls_workload_policies": [WORKLOAD_POLICY],
        "istio_mtls_plugin_ca": True,
        "istio_mtls_plugin_ca_cluster_name": "cluster1",
    }
    variables.update(roots)
    variables.update(extra)
    return variables


def snapshot(kubectl, kinds=SNAPSHOT_KINDS):
    """Return the set of (kind, namespace, name, resourceVersion) of the objects of ``kinds``."""
    listed = kubectl("get", kinds, "--all-namespaces", "-o", "json")
    return {
        (
            item["kind"],
            item["metadata"].get("namespace"),
            item["metadata"]["name"],
            item["metadata"]["resourceVersion"],
        )
        for item in listed["items"]
    }


def read_bundle(kubectl):
    """Return the cacerts Secret and its bundle, validated the way istiod does."""
    secret = kubectl("get", "secret", "cacerts", "-n", "istio-system", "-o", "json")
    files = {key: base64.b64decode(value) for key, value in secret["data"].items()}
    bundle = validate_bundle(files, datetime.datetime.now(datetime.timezone.utc))
    return secret, bundle


def fingerprints(certs):
    return [cert.fingerprint(hashes.SHA256()).hex() for cert in certs]


def labels_of(kubectl, namespace):
    return (
        kubectl("get", "namespace", namespace, "-o", "json")["metadata"].get("labels")
        or {}
    )


def pod_names(kubectl, namespace, selector):
    pods = kubectl("get", "pods", "-n", namespace, "-l", selector, "-o", "json")[
        "items"
    ]
    return sorted(pod["metadata"]["name"] for pod in pods)


def create_deployment(kubectl, namespace, name, containers):
    manifest = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {"name": container, "image": "stand-in.invalid/" + container}
                        for container in containers
                    ]
                },
            },
        },
    }
    kubectl("apply", "-f", "-", stdin=json.dumps(manifest))
    kubectl(
        "rollout", "status", "deployment/" + name, "-n", namespace, "--timeout=120s"
    )


def test_selector_in_root_namespace_rejected(empty_cluster, kubectl, roots):
    before = snapshot(kubectl)
    policy = {"name": "web", "namespace": "istio-system", "selector": {"app": "web"}}
    run = run_playbook(
        PLAYBOOK, empty_cluster, {"istio_mtls_workload_policies": [policy]}
    )
    assert run.returncode != 0
    assert (
        "PeerAuthentication istio-system/web has a selector but is in the root namespace "
        "istio-system, where Istio ignores policies with a selector. Move it to the namespace "
        "of the workloads it selects." in run.stdout
    ), run.stdout[-3000:]
    assert snapshot(kubectl) == before


def test_port_level_without_selector_rejected(empty_cluster, kubectl):
    before = snapshot(kubectl)
    policy = {
        "name": "hook",
        "namespace": "shop",
        "port_level_mtls": {"9443": "PERMISSIVE"},
    }
    run = run_playbook(
        PLAYBOOK, empty_cluster, {"istio_mtls_workload_policies": [policy]}
    )
    assert run.returncode != 0
    assert (
        "PeerAuthentication shop/hook sets port_level_mtls without a selector, which Istio "
        "rejects. Add a selector with the labels of the workloads, or remove port_level_mtls."
        in run.stdout
    ), run.stdout[-3000:]
    assert snapshot(kubectl) == before


def test_sidecar_install_with_plugin_ca(empty_cluster, kubectl, roots):
    run = run_playbook(PLAYBOOK, empty_cluster, sidecar_vars(roots))
    assert run.returncode == 0, run.stdout[-4000:]
    assert run.changed > 0

    secret, bundle = read_bundle(kubectl)
    istiod = kubectl("get", "deployment", "istiod", "-n", "istio-system", "-o", "json")
    assert (
        secret["metadata"]["creationTimestamp"]
        <= istiod["metadata"]["creationTimestamp"]
    )
    assert len(bundle.roots) == 1
    # istiod started after cacerts existed, so it needed no restart.
    annotations = istiod["spec"]["template"]["metadata"].get("annotations") or {}
    assert "pod-encryption.kubecrypt.io/cacerts" not in annotations


def test_sidecar_second_run_no_change(empty_cluster, roots):
    run = run_playbook(PLAYBOOK, empty_cluster, sidecar_vars(roots))
    assert run.returncode == 0, run.stdout[-4000:]
    assert run.changed == 0, run.stdout[-4000:]


def test_sidecar_policies_and_labels(kubectl):
    mesh = kubectl(
        "get", "peerauthentication", "default", "-n", "istio-system", "-o", "json"
    )
    hook = kubectl("get", "peerauthentication", "hook", "-n", "shop", "-o", "json")
    assert mesh["spec"]["mtls"]["mode"] == "STRICT"
    assert hook["spec"]["selector"]["matchLabels"] == {"app": "hook"}
    assert hook["spec"]["portLevelMtls"] == {"9443": {"mode": "PERMISSIVE"}}
    labels = labels_of(kubectl, "shop")
    assert labels.get("istio-injection") == "enabled"
    assert "istio.io/rev" not in labels


def test_posture_reports_workload_mode(empty_cluster, kubectl):
    create_deployment(kubectl, "shop", "hook", ["app", "istio-proxy"])
    result, _output = run_module(
        "kubecrypt.pod_encryption.mesh_info",
        {"namespaces": ["shop", "legacy"]},
        empty_cluster,
    )
    shop, legacy = result["namespaces"]
    assert result["changed"] is False
    assert result["mesh"] == {"mode": "STRICT", "source": "istio-system/default"}
    assert shop["enrolled"] is True
    assert shop["pods"] == 2
    assert shop["unmeshed_pods"] == []
    assert set(shop["workload_modes"].values()) == {"STRICT"}
    assert legacy["enrolled"] is False
    assert result["istiod"] == {"name": "istiod", "found": True, "ready": True}
    assert result["cacerts"]["valid"] is True
    assert result["cacerts"]["intermediate"]["days_to_expiry"] >= 364
    assert result["destination_rules"]["served"] is True
    assert result["destination_rules"]["risky"] == []
    assert result["summary"][0].startswith(
        "shop: STRICT (istio-system/default), enrolled, 2 pod(s)"
    )


def test_migration_refusal_lists_unmeshed_pods(empty_cluster, kubectl, roots):
    create_deployment(kubectl, "legacy", "web", ["app"])
    create_deployment(kubectl, "legacy", "meshed", ["app", "istio-proxy"])
    names = pod_names(kubectl, "legacy", "app=web")
    assert len(names) == 2
    variables = sidecar_vars(
        roots, istio_mtls_namespaces=[{"name": "shop"}, {"name": "legacy"}]
    )
    kinds = SNAPSHOT_KINDS + ",peerauthentications"
    before = snapshot(kubectl, kinds)

    run = run_playbook(PLAYBOOK, empty_cluster, variables)

    assert run.returncode != 0
    expected = (
        "2 pod(s) without the istio-proxy container would be in a STRICT scope and lose "
        "plain-text traffic: legacy/{0}, legacy/{1}. Restart them after enrolment, or set "
        "istio_mtls_restart_unmeshed to true, or give their namespace the mode PERMISSIVE, "
        "or set istio_mtls_unmeshed_pods to warn.".format(*names)
    )
    assert expected in run.stdout, run.stdout[-3000:]
    assert snapshot(kubectl, kinds) == before
    assert "istio-injection" not in labels_of(kubectl, "legacy")


def test_warn_mode_proceeds(empty_cluster, kubectl, roots):
    variables = sidecar_vars(
        roots,
        istio_mtls_namespaces=[{"name": "shop"}, {"name": "legacy"}],
        istio_mtls_unmeshed_pods="warn",
    )
    run = run_playbook(PLAYBOOK, empty_cluster, variables)
    assert run.returncode == 0, run.stdout[-3000:]
    assert "WARNING: 2 pod(s) without the istio-proxy container" in run.stdout
    assert labels_of(kubectl, "legacy").get("istio-injection") == "enabled"


def test_destination_rule_warning(empty_cluster, kubectl, roots):
    rules = [
        ("plain-to-legacy", "web.legacy.svc.cluster.local", "DISABLE"),
        ("simple-outside", "api.example.com", "SIMPLE"),
    ]
    for name, host, mode in rules:
        rule = {
            "apiVersion": "networking.istio.io/v1",
            "kind": "DestinationRule",
            "metadata": {"name": name, "namespace": "shop"},
            "spec": {"host": host, "trafficPolicy": {"tls": {"mode": mode}}},
        }
        kubectl("apply", "-f", "-", stdin=json.dumps(rule))
    variables = sidecar_vars(
        roots,
        istio_mtls_namespaces=[{"name": "shop"}, {"name": "legacy"}],
        istio_mtls_unmeshed_pods="warn",
    )

    run = run_playbook(PLAYBOOK, empty_cluster, variables)

    kubectl("delete", "destinationrule", "plain-to-legacy", "simple-outside", "-n", "shop")
    assert run.returncode == 0, run.stdout[-3000:]
    warning = (
        "WARNING: DestinationRule shop/plain-to-legacy sets TLS mode DISABLE for "
        "web.legacy.svc.cluster.local, which overrides auto mTLS and fails against a STRICT "
        "server. Remove its trafficPolicy.tls or set ISTIO_MUTUAL."
    )
    assert warning in run.stdout, run.stdout[-3000:]
    assert "simple-outside" not in run.stdout
    assert run.changed == 0, run.stdout[-3000:]


def test_restart_unmeshed_in_batches(empty_cluster, kubectl, roots):
    variables = sidecar_vars(
        roots,
        istio_mtls_namespaces=[{"name": "shop"}, {"name": "legacy"}],
        istio_mtls_unmeshed_pods="warn",
        istio_mtls_restart_unmeshed=True,
        istio_mtls_restart_batch_size=1,
    )
    run = run_playbook(PLAYBOOK, empty_cluster, variables)
    assert run.returncode == 0, run.stdout[-3000:]

    def restarted(name):
        deployment = kubectl("get", "deployment", name, "-n", "legacy", "-o", "json")
        annotations = (
            deployment["spec"]["template"]["metadata"].get("annotations") or {}
        )
        return "kubectl.kubernetes.io/restartedAt" in annotations

    assert restarted("web")
    assert not restarted("meshed")
    assert "(item=Deployment legacy/web)" in run.stdout
    # kwok starts the new pods without a sidecar, so the check after the restart still warns.
    # Old pods that are still terminating may be counted too.
    assert re.search(
        r"WARNING: \d+ pod\(s\) without the istio-proxy container", run.stdout
    )


def test_intermediate_renewal_restarts_istiod(empty_cluster, kubectl, roots):
    before = read_bundle(kubectl)[1]
    variables = sidecar_vars(
        roots,
        istio_mtls_plugin_ca_intermediate_lifetime="500d",
        istio_mtls_plugin_ca_renew_before="400d",
    )
    run = run_playbook(PLAYBOOK, empty_cluster, variables)
    assert run.returncode == 0, run.stdout[-3000:]
    after = read_bundle(kubectl)[1]
    assert fingerprints([after.intermediate.cert]) != fingerprints(
        [before.intermediate.cert]
    )
    assert fingerprints(after.roots) == fingerprints(before.roots)
    istiod = kubectl("get", "deployment", "istiod", "-n", "istio-system", "-o", "json")
    annotations = istiod["spec"]["template"]["metadata"].get("annotations") or {}
    assert "pod-encryption.kubecrypt.io/cacerts" in annotations
    assert "Workloads get certificates from it only when they restart" in run.stdout

    again = run_playbook(PLAYBOOK, empty_cluster, variables)
    assert again.returncode == 0, again.stdout[-3000:]
    assert again.changed == 0, again.stdout[-3000:]


def test_renewal_restarts_enrolled_workloads(empty_cluster, kubectl, roots):
    # The intermediate has about 500 days left, so renew_before 500d renews it once, and the
    # new 600-day intermediate is outside that window on the second run.
    variables = sidecar_vars(
        roots,
        istio_mtls_namespaces=[{"name": "shop"}, {"name": "legacy"}],
        istio_mtls_unmeshed_pods="warn",
        istio_mtls_plugin_ca_intermediate_lifetime="600d",
        istio_mtls_plugin_ca_renew_before="500d",
        istio_mtls_restart_workloads=True,
    )
    before = read_bundle(kubectl)[1]

    run = run_playbook(PLAYBOOK, empty_cluster, variables)

    assert run.returncode == 0, run.stdout[-3000:]
    after = read_bundle(kubectl)[1]
    assert fingerprints([after.intermediate.cert]) != fingerprints([before.intermediate.cert])
    istiod = kubectl("get", "deployment", "istiod", "-n", "istio-system", "-o", "json")
    digest = istiod["spec"]["template"]["metadata"]["annotations"][
        "pod-encryption.kubecrypt.io/cacerts"
    ]
    for name in ("web", "meshed"):
        deployment = kubectl("get", "deployment", name, "-n", "legacy", "-o", "json")
        annotations = deployment["spec"]["template"]["metadata"].get("annotations") or {}
        assert annotations.get("pod-encryption.kubecrypt.io/cacerts") == digest, name
    assert "Workloads get certificates from it only when they restart" not in run.stdout
    assert "(item=Deployment legacy/web)" in run.stdout

    again = run_playbook(PLAYBOOK, empty_cluster, variables)
    assert again.returncode == 0, again.stdout[-3000:]
    assert again.changed == 0, again.stdout[-3000:]


def test_root_rotation_four_runs(empty_cluster, kubectl, roots):
    variables = sidecar_vars(
        roots,
        istio_mtls_plugin_ca_intermediate_lifetime="500d",
        istio_mtls_plugin_ca_renew_before="400d",
        istio_mtls_plugin_ca_root_rotation_enabled=True,
    )
    original = read_bundle(kubectl)[1]
    old_root = fingerprints(original.roots)

    run = run_playbook(PLAYBOOK, empty_cluster, variables)
    assert run.returncode == 0, run.stdout[-3000:]
    istiod = kubectl("get", "deployment", "istiod", "-n", "istio-system", "-o", "json")
    container = istiod["spec"]["template"]["spec"]["containers"][0]
    env = {item["name"]: item.get("value") for item in container["env"]}
    assert env.get("ISTIO_MULTIROOT_MESH") == "true"
    secret, bundle = read_bundle(kubectl)
    assert fingerprints(bundle.roots) == old_root

    phases = []
    for attempt in range(3):
        step = run_playbook(
            PLAYBOOK,
            empty_cluster,
            dict(variables, istio_mtls_plugin_ca_rotate_root=True),
        )
        assert step.returncode == 0, step.stdout[-3000:]
        secret, bundle = read_bundle(kubectl)
        phases.append(
            (
                secret["metadata"]["annotations"][
                    "pod-encryption.kubecrypt.io/root-rotation-phase"
                ],
                len(bundle.roots),
                fingerprints([bundle.issuing_root]) == old_root,
            )
        )
    assert phases == [("2", 2, True), ("3", 2, False), ("4", 1, False)]
    assert fingerprints(bundle.roots) != old_root


def test_revision_enrolment(empty_cluster, kubectl):
    variables = {
        "istio_mtls_namespaces": [{"name": "shop"}],
        "istio_mtls_revision": "canary",
    }
    run = run_playbook(PLAYBOOK, empty_cluster, variables)
    assert run.returncode == 0, run.stdout[-3000:]
    labels = labels_of(kubectl, "shop")
    assert labels.get("istio.io/rev") == "canary"
    assert "istio-injection" not in labels
    istiod = kubectl(
        "get", "deployment", "istiod-canary", "-n", "istio-system", "-o", "json"
    )
    assert istiod["metadata"]["labels"]["istio.io/rev"] == "canary"

    again = run_playbook(PLAYBOOK, empty_cluster, variables)
    assert again.returncode == 0, again.stdout[-3000:]
    assert again.changed == 0, again.stdout[-3000:]


def test_ambient_converges(empty_cluster, kubectl):
    variables = dict(
        AMBIENT_CHARTS,
        istio_mtls_profile="ambient",
        istio_mtls_namespaces=[{"name": "shop"}],
    )
    run = run_playbook(PLAYBOOK, empty_cluster, variables)
    assert run.returncode == 0, run.stdout[-3000:]
    for name in ("istio-cni-node", "ztunnel"):
        daemonset = kubectl(
            "get", "daemonset", name, "-n", "istio-system", "-o", "json"
        )
        assert (
            daemonset["status"]["numberReady"]
            == daemonset["status"]["desiredNumberScheduled"]
        )
        assert daemonset["status"]["numberReady"] >= 1
    labels = labels_of(kubectl, "shop")
    assert labels.get("istio.io/dataplane-mode") == "ambient"
    assert "istio-injection" not in labels
    assert "istio.io/rev" not in labels

    again = run_playbook(PLAYBOOK, empty_cluster, variables)
    assert again.returncode == 0, again.stdout[-3000:]
    assert again.changed == 0, again.stdout[-3000:]


def annotate_when_enrolled(kubectl, namespace, stop):
    """Play istio-cni: once ``namespace`` is ambient, mark its pods as redirected.

    No CNI agent runs on kwok's nodes, so nothing else sets the annotation here.
    """
    while not stop.is_set():
        if labels_of(kubectl, namespace).get("istio.io/dataplane-mode") == "ambient":
            time.sleep(2)
            kubectl(
                "annotate", "pods", "--all", "-n", namespace, "--overwrite",
                "ambient.istio.io/redirection=enabled",
            )
            return
        time.sleep(0.5)


def test_ambient_waits_for_redirection(empty_cluster, kubectl):
    kubectl("create", "namespace", "mesh-apps")
    create_deployment(kubectl, "mesh-apps", "plain", ["app"])
    variables = dict(
        AMBIENT_CHARTS,
        istio_mtls_profile="ambient",
        istio_mtls_namespaces=[{"name": "shop"}, {"name": "mesh-apps"}],
        istio_mtls_redirection_timeout=90,
    )
    stop = threading.Event()
    annotator = threading.Thread(target=annotate_when_enrolled, args=(kubectl, "mesh-apps", stop))
    annotator.start()
    try:
        run = run_playbook(PLAYBOOK, empty_cluster, variables)
    finally:
        stop.set()
        annotator.join()

    assert run.returncode == 0, run.stdout[-3000:]
    assert "Wait until istio-cni redirects the pods" in run.stdout
    assert "without ambient redirection" not in run.stdout
    assert labels_of(kubectl, "mesh-apps").get("istio.io/dataplane-mode") == "ambient"

    again = run_playbook(PLAYBOOK, empty_cluster, variables)
    assert again.returncode == 0, again.stdout[-3000:]
    assert again.changed == 0, again.stdout[-3000:]


def test_ambient_redirection_timeout_fails(empty_cluster, kubectl):
    kubectl("create", "namespace", "late-apps")
    create_deployment(kubectl, "late-apps", "plain", ["app"])
    names = pod_names(kubectl, "late-apps", "app=plain")
    variables = dict(
        AMBIENT_CHARTS,
        istio_mtls_profile="ambient",
        istio_mtls_namespaces=[{"name": "shop"}, {"name": "late-apps"}],
        istio_mtls_redirection_timeout=10,
    )
    before = snapshot(kubectl, "peerauthentications")

    checked = run_playbook(PLAYBOOK, empty_cluster, variables, check=True)
    run = run_playbook(PLAYBOOK, empty_cluster, variables)

    assert checked.returncode == 0, checked.stdout[-3000:]
    assert "Check mode does not label the namespaces" in checked.stdout
    assert run.returncode != 0
    expected = (
        "2 pod(s) without ambient redirection (annotation ambient.istio.io/redirection=enabled) "
        "would be in a STRICT scope and lose plain-text traffic: late-apps/{0}, late-apps/{1}. "
        "Check that istio-cni runs on their nodes and that the pods do not opt out with "
        "istio.io/dataplane-mode=none, or raise istio_mtls_redirection_timeout, or give their "
        "namespace the mode PERMISSIVE, or set istio_mtls_unmeshed_pods to warn.".format(*names)
    )
    assert expected in run.stdout, run.stdout[-3000:]
    assert labels_of(kubectl, "late-apps").get("istio.io/dataplane-mode") == "ambient"
    assert snapshot(kubectl, "peerauthentications") == before
