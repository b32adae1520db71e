"""Faults: an API server that stops mid-converge, conflicting writes, concurrent rotations."""

import base64
import json
import os
import signal
import threading
import time
import uuid

import pytest

from harness import (
    CILIUMNODE_CRD,
    SimulatedAgent,
    kubectl_runner,
    assert_no_key_in_output,
    run_module,
    run_playbook,
    start_cluster,
    stop_cluster,
)

from ansible_collections.kubecrypt.pod_encryption.plugins.module_utils._ipsec_key import (
    generate_key,
    parse_key_line,
)
from ansible_collections.kubecrypt.pod_encryption.plugins.module_utils._ipsec_secret import (
    IPsecKeySecret,
    Request,
)
from ansible_collections.kubecrypt.pod_encryption.plugins.module_utils._k8s_compat import (
    ObjectStore,
    get_api_client,
)

HEX40 = "0123456789abcdef0123456789abcdef01234567"


def read_line(kubectl, namespace):
    secret = kubectl("get", "secret", "cilium-ipsec-keys", "-n", namespace, "-o", "json")
    return base64.b64decode(secret["data"]["keys"]).decode()


def wait_until(condition, timeout, description):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    raise AssertionError("timed out after {0} s waiting for {1}".format(timeout, description))


def test_api_server_stop_mid_converge(empty_cluster):
    """Kill the API server while helm waits for Cilium, restart it, and converge again."""
    kubectl = kubectl_runner(empty_cluster)
    state_dir = os.path.dirname(empty_cluster)
    kubectl("apply", "-f", CILIUMNODE_CRD)
    agent = SimulatedAgent(empty_cluster)
    agent.start()
    try:
        outcome = {}
        runner = threading.Thread(
            target=lambda: outcome.setdefault(
                "run", run_playbook("playbooks/site.yml", empty_cluster, verbosity=3)
            )
        )
        runner.start()

        def install_pending():
            found = kubectl(
                "get", "secrets", "-n", "kube-system", "-l", "owner=helm,status=pending-install",
                "-o", "json", check=False,
            )
            return isinstance(found, dict) and len(found["items"]) > 0

        wait_until(install_pending, 120, "helm to start installing Cilium")
        with open(os.path.join(state_dir, "run", "kube-apiserver.pid")) as handle:
            os.kill(int(handle.read()), signal.SIGKILL)
        runner.join(timeout=600)

        failed = outcome["run"]
        assert failed.returncode != 0
        assert "connection refused" in failed.stdout

        # Restart the whole control plane on the same etcd data. kwok gives up on pods it
        # could not update while the API server was down, and only a fresh start relists them.
        stop_cluster(state_dir)
        start_cluster(state_dir)
        # The interrupted install left a pending revision; once it is older than the wait
        # timeout the role treats it as abandoned and removes it.
        pending = kubectl(
            "get", "secrets", "-n", "kube-system", "-l", "owner=helm,status=pending-install", "-o", "json"
        )
        assert len(pending["items"]) == 1
        time.sleep(32)
        short_timeout = {"cilium_encryption_wait_timeout": 30, "istio_mtls_wait_timeout": 120}
        rerun = run_playbook("playbooks/site.yml", empty_cluster, short_timeout, verbosity=3)
        assert rerun.returncode == 0, rerun.stdout[-3000:]
        again = run_playbook("playbooks/site.yml", empty_cluster, short_timeout, verbosity=3)
        assert again.returncode == 0, again.stdout[-3000:]
        assert again.changed == 0, again.stdout[-3000:]
        line = read_line(kubectl, "kube-system")
        assert parse_key_line(line).spi >= 1
        for run in (failed, rerun, again):
            assert_no_key_in_output(run, line)
        config = kubectl("get", "configmap", "cilium-config", "-n", "kube-system", "-o", "json")
        assert config["data"]["enable-ipsec"] == "true"
    finally:
        agent.stop()


class InterferingStore(ObjectStore):
    """A real ObjectStore that lets another writer change the Secret right after each read.

    The API server is real and really returns 409 Conflict. Only the timing of the competing
    write is arranged, because a real race would be too rare to test.
    """

    def __init__(self, client, interfere):
        super().__init__(client, "Secret", "v1")
        self.interfere = interfere
        self.reads = 0

    def get(self, name, namespace):
        found = super().get(name, namespace)
        self.reads += 1
        if self.reads == 1:
            self.interfere()
        return found


@pytest.fixture
def namespace(kubectl):
    name = "fault-" + uuid.uuid4().hex[:8]
    kubectl("create", "namespace", name)
    yield name
    kubectl("delete", "namespace", name, "--wait=true", "--timeout=120s")


def create_secret(kubectl, namespace, line):
    manifest = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "cilium-ipsec-keys", "namespace": namespace},
        "data": {"keys": base64.b64encode(line.encode()).decode()},
    }
    kubectl("create", "-f", "-", stdin=json.dumps(manifest))


def utc_now():
    import datetime

    return datetime.datetime.now(datetime.timezone.utc)


def test_conflict_with_concurrent_rotation_keeps_theirs(kubeconfig, kubectl, namespace):
    create_secret(kubectl, namespace, "3+ rfc4106(gcm(aes)) {0} 128".format(HEX40))
    theirs = generate_key(spi=4).line()

    def rotate_elsewhere():
        patch = {"data": {"keys": base64.b64encode(theirs.encode()).decode()}}
        kubectl("patch", "secret", "cilium-ipsec-keys", "-n", namespace, "--type=merge", "-p", json.dumps(patch))

    store = InterferingStore(get_api_client(kubeconfig=kubeconfig), rotate_elsewhere)
    result = IPsecKeySecret(store, "cilium-ipsec-keys", namespace, "keys").ensure(
        Request(rotate=True), utc_now
    )
    assert store.reads == 2
    assert result.changed is False
    assert result.concurrent_rotation is True
    assert read_line(kubectl, namespace) == theirs


def test_conflict_with_unrelated_write_rotates_once(kubeconfig, kubectl, namespace):
    create_secret(kubectl, namespace, "3+ rfc4106(gcm(aes)) {0} 128".format(HEX40))

    def label_elsewhere():
        kubectl("label", "secret", "cilium-ipsec-keys", "-n", namespace, "team=platform")

    store = InterferingStore(get_api_client(kubeconfig=kubeconfig), label_elsewhere)
    result = IPsecKeySecret(store, "cilium-ipsec-keys", namespace, "keys").ensure(
        Request(rotate=True), utc_now
    )
    line = read_line(kubectl, namespace)
    assert store.reads == 2
    assert result.changed is True
    assert line.startswith("4+ ")
    assert HEX40 not in line
    labels = kubectl("get", "secret", "cilium-ipsec-keys", "-n", namespace, "-o", "json")["metadata"]["labels"]
    assert labels["team"] == "platform"


def test_conflict_with_max_age_sees_fresh_key(kubeconfig, kubectl, namespace):
    create_secret(kubectl, namespace, "3+ rfc4106(gcm(aes)) {0} 128".format(HEX40))
    first = run_module("kubecrypt.pod_encryption.cilium_ipsec_key", {"namespace": namespace, "rotate": True}, kubeconfig)[0]
    assert first["spi"] == 4
    # Age the key on record, then let another scheduled run rotate it first.
    kubectl(
        "annotate", "--overwrite", "secret", "cilium-ipsec-keys", "-n", namespace,
        "pod-encryption.kubecrypt.io/key-created-at=2026-01-01T00:00:00Z",
    )

    def scheduled_run_elsewhere():
        other, _output = run_module(
            "kubecrypt.pod_encryption.cilium_ipsec_key", {"namespace": namespace, "max_age": "30d"}, kubeconfig
        )
        assert other["spi"] == 5

    store = InterferingStore(get_api_client(kubeconfig=kubeconfig), scheduled_run_elsewhere)
    result = IPsecKeySecret(store, "cilium-ipsec-keys", namespace, "keys").ensure(
        Request(max_age="30d"), utc_now
    )
    assert result.changed is False
    assert read_line(kubectl, namespace).startswith("5+ ")


def test_two_concurrent_rotation_runs_rotate_once(kubeconfig, kubectl):
    """Two rotation playbooks started together: one rotates, the other waits for it."""
    kubectl("apply", "-f", CILIUMNODE_CRD)
    agent = SimulatedAgent(kubeconfig)
    agent.start("--delay", "8")
    try:
        converge = run_playbook("playbooks/cilium.yml", kubeconfig)
        assert converge.returncode == 0, converge.stdout[-3000:]
        line_before = read_line(kubectl, "kube-system")
        before = parse_key_line(line_before).spi

        runs = []
        threads = [
            threading.Thread(
                target=lambda: runs.append(
                    run_playbook(
                        "playbooks/rotate_ipsec_key.yml",
                        kubeconfig,
                        {"cilium_encryption_rotation_timeout": 90},
                        verbosity=3,
                    )
                )
            )
            for attempt in range(2)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=600)

        assert [run.returncode for run in runs] == [0, 0], [run.stdout[-2000:] for run in runs]
        line_after = read_line(kubectl, "kube-system")
        after = parse_key_line(line_after).spi
        assert after == before % 15 + 1
        assert sum(1 for run in runs if "rotated from SPI" in run.stdout) == 1
        for run in runs:
            assert_no_key_in_output(run, line_before, line_after)
    finally:
        agent.stop()
        kubectl("delete", "ciliumnodes", "--all", "--wait=true")
