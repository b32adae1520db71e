"""docs/examples/platform.yml: both roles inside a platform playbook, auth from module_defaults."""

import pytest

import os

from harness import CILIUMNODE_CRD, TESTS_DIR, SimulatedAgent, kubectl_runner, run_playbook

PLATFORM = "docs/examples/platform.yml"


@pytest.fixture(scope="module")
def cluster(empty_cluster):
    kubectl = kubectl_runner(empty_cluster)
    kubectl("apply", "-f", CILIUMNODE_CRD)
    kubectl("wait", "--for=condition=Established", "crd/ciliumnodes.cilium.io", "--timeout=60s")
    agent = SimulatedAgent(empty_cluster)
    agent.start()
    yield empty_cluster
    agent.stop()


def test_platform_playbook_converges_without_kubeconfig_env(cluster):
    extra = {
        "platform_kubeconfig": cluster,
        "kubecrypt_test_charts": os.path.join(TESTS_DIR, "fixtures", "charts"),
    }
    # KUBECONFIG is left unset, so only module_defaults can point the modules at the cluster.
    first = run_playbook(PLATFORM, None, extra, env={"KUBECONFIG": "/nonexistent/kubeconfig"})
    assert first.returncode == 0, first.stdout[-3000:]
    assert first.changed > 0

    second = run_playbook(PLATFORM, None, extra, env={"KUBECONFIG": "/nonexistent/kubeconfig"})
    assert second.returncode == 0, second.stdout[-3000:]
    assert second.changed == 0, second.stdout[-3000:]


def test_platform_playbook_left_its_objects(cluster):
    kubectl = kubectl_runner(cluster)
    config = kubectl("get", "configmap", "platform-version", "-n", "platform-tools", "-o", "json")
    assert config["data"]["version"] == "2026.12"
    namespace = kubectl("get", "namespace", "platform-tools", "-o", "json")
    assert namespace["metadata"]["labels"]["istio-injection"] == "enabled"
    cilium = kubectl("get", "configmap", "cilium-config", "-n", "kube-system", "-o", "json")
    assert cilium["data"]["enable-ipsec"] == "true"
    assert cilium["data"]["cni-exclusive"] == "false"
