"""playbooks/site.yml on the local control plane, with the stand-in charts.

The tests in this file are one scenario and run in file order: check mode on the empty
cluster, the first run, check mode again, the second run, then the state they left behind.
"""

import base64
import re

import pytest

from harness import (
    CILIUMNODE_CRD,
    SimulatedAgent,
    assert_no_key_in_output,
    kubectl_runner,
    run_module,
    run_playbook,
)

SITE = "playbooks/site.yml"
KEY_LINE = re.compile(r"^([1-9]|1[0-5])\+ rfc4106\(gcm\(aes\)\) [0-9a-f]{40} 128$")
ENROLMENT = {
    "istio_mtls_namespaces": [
        {"name": "default"},
        {"name": "payments", "mode": "PERMISSIVE"},
    ]
}
SNAPSHOT_KINDS = "namespaces,secrets,configmaps,daemonsets,deployments,customresourcedefinitions"


def snapshot(kubectl):
    """Return the set of (kind, namespace, name, resourceVersion) of the objects a run could touch."""
    listed = kubectl("get", SNAPSHOT_KINDS, "--all-namespaces", "-o", "json")
    return {
        (
            item["kind"],
            item["metadata"].get("namespace"),
            item["metadata"]["name"],
            item["metadata"]["resourceVersion"],
        )
        for item in listed["items"]
    }


def read_key_line(kubectl):
    secret = kubectl("get", "secret", "cilium-ipsec-keys", "-n", "kube-system", "-o", "json")
    return base64.b64decode(secret["data"]["keys"]).decode()


@pytest.fixture(scope="module")
def cluster(empty_cluster):
    """A control plane of its own, so that no other test module leaves objects behind.

    The CiliumNode CRD and a simulated agent stand in for what the Cilium operator and agents
    would register and publish; the role's posture check reads both.
    """
    kubectl = kubectl_runner(empty_cluster)
    kubectl("create", "namespace", "payments")
    kubectl("apply", "-f", CILIUMNODE_CRD)
    kubectl("wait", "--for=condition=Established", "crd/ciliumnodes.cilium.io", "--timeout=60s")
    agent = SimulatedAgent(empty_cluster)
    agent.start()
    yield empty_cluster
    agent.stop()


@pytest.fixture(scope="module")
def kubectl(cluster):
    return kubectl_runner(cluster)


def test_check_mode_on_empty_cluster_creates_nothing(cluster, kubectl):
    before = snapshot(kubectl)
    run = run_playbook(SITE, cluster, ENROLMENT, check=True)
    assert run.returncode == 0, run.stdout[-3000:]
    assert run.changed > 0
    assert snapshot(kubectl) == before
    assert kubectl("get", "secret", "cilium-ipsec-keys", "-n", "kube-system", check=False).returncode != 0
    assert kubectl("get", "namespace", "istio-system", check=False).returncode != 0


def test_first_run_changes(cluster):
    run = run_playbook(SITE, cluster, ENROLMENT)
    assert run.returncode == 0, run.stdout[-3000:]
    assert run.failed == 0
    assert run.changed > 0


def test_check_mode_after_first_run_reports_no_change(cluster, kubectl):
    before = snapshot(kubectl)
    run = run_playbook(SITE, cluster, ENROLMENT, check=True)
    assert run.returncode == 0, run.stdout[-3000:]
    assert run.changed == 0, run.stdout[-3000:]
    assert snapshot(kubectl) == before


def test_second_run_reports_no_change(cluster):
    run = run_playbook(SITE, cluster, ENROLMENT)
    assert run.returncode == 0, run.stdout[-3000:]
    assert run.changed == 0, run.stdout[-3000:]


def test_ipsec_secret_holds_one_valid_line(kubectl):
    assert KEY_LINE.match(read_key_line(kubectl))


def test_cilium_config_turns_ipsec_on(kubectl):
    config = kubectl("get", "configmap", "cilium-config", "-n", "kube-system", "-o", "json")
    assert config["data"]["enable-ipsec"] == "true"
    assert config["data"]["ipsec-key-file"] == "/etc/ipsec/keys"
    assert "enable-wireguard" not in config["data"]


def test_agents_mount_the_key_secret(kubectl):
    agents = kubectl("get", "daemonset", "cilium", "-n", "kube-system", "-o", "json")
    volumes = agents["spec"]["template"]["spec"]["volumes"]
    secrets = [v["secret"]["secretName"] for v in volumes if "secret" in v]
    assert "cilium-ipsec-keys" in secrets
    assert agents["status"]["numberReady"] == 3


def test_mesh_wide_policy_is_strict(kubectl):
    policy = kubectl("get", "peerauthentication", "default", "-n", "istio-system", "-o", "json")
    assert policy["spec"]["mtls"]["mode"] == "STRICT"
    assert "selector" not in policy["spec"]


def test_namespace_policy_is_permissive(kubectl):
    policy = kubectl("get", "peerauthentication", "default", "-n", "payments", "-o", "json")
    assert policy["spec"]["mtls"]["mode"] == "PERMISSIVE"


def test_enrolled_namespaces_are_labelled(kubectl):
    for name in ("default", "payments"):
        namespace = kubectl("get", "namespace", name, "-o", "json")
        assert namespace["metadata"]["labels"].get("istio-injection") == "enabled"


def test_istiod_is_available(kubectl):
    istiod = kubectl("get", "deployment", "istiod", "-n", "istio-system", "-o", "json")
    assert istiod["status"].get("availableReplicas", 0) >= 1


def test_rotation_keeps_length_and_site_stays_converged(cluster, kubectl):
    before = read_key_line(kubectl)
    result, _output = run_module(
        "kubecrypt.pod_encryption.cilium_ipsec_key", {"rotate": True}, cluster
    )
    after = read_key_line(kubectl)
    old_spi = int(before.split("+")[0])
    assert result["spi"] == old_spi % 15 + 1
    assert after.split(" ")[2] != before.split(" ")[2]
    assert len(after.split(" ")[2]) == len(before.split(" ")[2])
    assert KEY_LINE.match(after)

    run = run_playbook(SITE, cluster, ENROLMENT)
    assert run.returncode == 0, run.stdout[-3000:]
    assert run.changed == 0, run.stdout[-3000:]
    assert read_key_line(kubectl) == after


def test_demo_at_vvv_never_prints_the_key(cluster, kubectl):
    removed, _output = run_module(
        "kubecrypt.pod_encryption.cilium_ipsec_key", {"state": "absent"}, cluster
    )
    assert removed["changed"] is True

    run = run_playbook(SITE, cluster, ENROLMENT, verbosity=3, diff=True)
    assert run.returncode == 0, run.stdout[-3000:]
    line = read_key_line(kubectl)
    assert "cilium-ipsec-keys" in run.stdout + run.stderr
    assert_no_key_in_output(run, line)
