"""IPsec key rotation end to end: the role rotates, a simulated agent publishes the SPI.

No Cilium agent can run on kwok's simulated nodes, so tests/cluster/simulated_agent.py plays
its part: it publishes the SPI from the Secret in each CiliumNode's spec.encryption.key, the
field the role waits on. The tests run in file order on one Cilium install.
"""

import base64
import time

import pytest

from harness import CILIUMNODE_CRD, SimulatedAgent, assert_no_key_in_output, run_playbook

ROTATE = "playbooks/rotate_ipsec_key.yml"
CILIUM = "playbooks/cilium.yml"
NODES = ("kubecrypt-worker-1", "kubecrypt-worker-2", "kubecrypt-worker-3")


@pytest.fixture(scope="module")
def agent(kubeconfig, kubectl):
    kubectl("apply", "-f", CILIUMNODE_CRD)
    kubectl("wait", "--for=condition=Established", "crd/ciliumnodes.cilium.io", "--timeout=60s")
    simulated = SimulatedAgent(kubeconfig)
    simulated.start()
    yield simulated
    simulated.stop()
    kubectl("delete", "ciliumnodes", "--all", "--wait=true")


@pytest.fixture(scope="module")
def cilium(kubeconfig, agent):
    run = run_playbook(CILIUM, kubeconfig)
    assert run.returncode == 0, run.stdout[-3000:]
    return kubeconfig


def run_rotation(kubeconfig, extra_vars=None, check=False):
    """Run the rotation playbook at -vvv with diffs, as an operator debugging it would."""
    return run_playbook(ROTATE, kubeconfig, extra_vars, check=check, verbosity=3, diff=True)


def secret_spi(kubectl):
    secret = kubectl("get", "secret", "cilium-ipsec-keys", "-n", "kube-system", "-o", "json")
    line = base64.b64decode(secret["data"]["keys"]).decode()
    return int(line.split("+")[0]), line


def cilium_node_spis(kubectl):
    listed = kubectl("get", "ciliumnodes", "-o", "json")
    return {
        item["metadata"]["name"]: item["spec"]["encryption"]["key"] for item in listed["items"]
    }


def wait_for_nodes(kubectl, spi, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cilium_node_spis(kubectl) == {name: spi for name in NODES}:
            return
        time.sleep(1)
    raise AssertionError("CiliumNodes did not reach SPI {0}: {1}".format(spi, cilium_node_spis(kubectl)))


def test_rotation_converges(cilium, agent, kubectl):
    old_spi, old_line = secret_spi(kubectl)
    wait_for_nodes(kubectl, old_spi)

    run = run_rotation(cilium, {"cilium_encryption_rotation_timeout": 60})
    assert run.returncode == 0, run.stdout[-3000:]
    new_spi, new_line = secret_spi(kubectl)
    assert_no_key_in_output(run, old_line, new_line)
    assert new_spi == old_spi % 15 + 1
    assert new_line.split(" ")[2] != old_line.split(" ")[2]
    assert cilium_node_spis(kubectl) == {name: new_spi for name in NODES}
    assert "rotated from SPI {0} to SPI {1}".format(old_spi, new_spi) in run.stdout


def test_check_mode_rotation_changes_nothing(cilium, agent, kubectl):
    before = secret_spi(kubectl)
    run = run_rotation(cilium, check=True)
    assert run.returncode == 0, run.stdout[-3000:]
    assert_no_key_in_output(run, before[1])
    assert run.changed == 1
    assert secret_spi(kubectl) == before


def test_max_age_rotation_is_idempotent(cilium, agent, kubectl):
    before = secret_spi(kubectl)
    run = run_playbook(ROTATE, cilium, {"cilium_encryption_rotate_max_age": "30d"})
    assert run.returncode == 0, run.stdout[-3000:]
    assert run.changed == 0, run.stdout[-3000:]
    assert secret_spi(kubectl) == before


def test_stuck_node_fails_with_its_name(cilium, agent, kubectl):
    agent.start("--stuck", "kubecrypt-worker-3")
    old_spi = secret_spi(kubectl)[0]
    wait_for_nodes(kubectl, old_spi)

    run = run_rotation(
        cilium,
        {"cilium_encryption_rotation_timeout": 10, "cilium_encryption_rotation_poll_interval": 2},
    )
    new_spi, new_line = secret_spi(kubectl)
    assert_no_key_in_output(run, new_line)
    assert run.returncode != 0
    assert new_spi == old_spi % 15 + 1
    assert (
        "did not reach every node within 10 s. Nodes still on another SPI: "
        "kubecrypt-worker-3 (SPI {0}).".format(old_spi)
    ) in run.stdout


def test_rerun_after_stuck_waits_without_rotating(cilium, agent, kubectl):
    spi_before, line_before = secret_spi(kubectl)
    assert cilium_node_spis(kubectl)["kubecrypt-worker-3"] != spi_before
    agent.start("--stuck", "kubecrypt-worker-3", "--stuck-for", "10")

    run = run_rotation(cilium, {"cilium_encryption_rotation_timeout": 60})
    assert run.returncode == 0, run.stdout[-3000:]
    assert_no_key_in_output(run, line_before)
    assert secret_spi(kubectl) == (spi_before, line_before)
    assert "Not rotating: an earlier rotation to SPI {0}".format(spi_before) in run.stdout
    assert cilium_node_spis(kubectl) == {name: spi_before for name in NODES}


def test_key_watcher_off_restarts_agents(cilium, agent, kubectl):
    values = {"cilium_encryption_helm_values": {"encryption": {"ipsec": {"keyWatcher": False}}}}
    converge = run_playbook(CILIUM, cilium, values)
    assert converge.returncode == 0, converge.stdout[-3000:]
    config = kubectl("get", "configmap", "cilium-config", "-n", "kube-system", "-o", "json")
    assert config["data"]["enable-ipsec-key-watcher"] == "false"

    run = run_playbook(ROTATE, cilium, {"cilium_encryption_rotation_timeout": 60})
    assert run.returncode == 0, run.stdout[-3000:]
    new_spi = secret_spi(kubectl)[0]
    daemonset = kubectl("get", "daemonset", "cilium", "-n", "kube-system", "-o", "json")
    annotations = daemonset["spec"]["template"]["metadata"].get("annotations") or {}
    assert annotations.get("pod-encryption.kubecrypt.io/restarted-for-spi") == str(new_spi)
    assert cilium_node_spis(kubectl) == {name: new_spi for name in NODES}
