"""The cilium_encryption role: WireGuard, preflight refusals and render mode.

The WireGuard and preflight tests share one control plane of their own and run in file order.
"""

import json
import os
import re
import stat

import pytest
import yaml

from harness import CILIUMNODE_CRD, SimulatedAgent, kubectl_runner, run_playbook

CILIUM = "playbooks/cilium.yml"
WIREGUARD = {"cilium_encryption_type": "wireguard"}
KEY_LINE = re.compile(r"^([1-9]|1[0-5])\+ rfc4106\(gcm\(aes\)\) [0-9a-f]{40} 128$")
SNAPSHOT_KINDS = "namespaces,secrets,configmaps,daemonsets,deployments"


@pytest.fixture(scope="module")
def cluster(empty_cluster):
    kubectl = kubectl_runner(empty_cluster)
    kubectl("apply", "-f", CILIUMNODE_CRD)
    kubectl("wait", "--for=condition=Established", "crd/ciliumnodes.cilium.io", "--timeout=60s")
    agent = SimulatedAgent(empty_cluster)
    agent.start()
    yield empty_cluster
    agent.stop()


@pytest.fixture(scope="module")
def kubectl(cluster):
    return kubectl_runner(cluster)


def snapshot(kubectl):
    listed = kubectl("get", SNAPSHOT_KINDS, "--all-namespaces", "-o", "json")
    return {
        (item["kind"], item["metadata"].get("namespace"), item["metadata"]["name"],
         item["metadata"]["resourceVersion"])
        for item in listed["items"]
    }


def set_kernel(kubectl, node, release):
    patch = {"status": {"nodeInfo": {"kernelVersion": release}}}
    kubectl("patch", "node", node, "--subresource=status", "--type=merge", "-p", json.dumps(patch))


def assert_refused(kubectl, cluster, extra_vars, message):
    """Run the role, expect it to fail with ``message``, and check that nothing changed."""
    before = snapshot(kubectl)
    run = run_playbook(CILIUM, cluster, extra_vars)
    assert run.returncode != 0
    assert message in " ".join(run.stdout.split()), run.stdout[-3000:]
    assert snapshot(kubectl) == before


def test_wireguard_refused_on_old_kernel(cluster, kubectl):
    set_kernel(kubectl, "kubecrypt-worker-2", "5.4.0-1103-aws")
    try:
        assert_refused(
            kubectl,
            cluster,
            WIREGUARD,
            "WireGuard needs Linux 5.6 or later on every node, but these nodes run older "
            "kernels: kubecrypt-worker-2 (kernel 5.4.0-1103-aws). Upgrade their kernels or use "
            "cilium_encryption_type: ipsec.",
        )
    finally:
        set_kernel(kubectl, "kubecrypt-worker-2", "6.8.0-45-generic")


def test_wireguard_converges(cluster, kubectl):
    first = run_playbook(CILIUM, cluster, WIREGUARD)
    assert first.returncode == 0, first.stdout[-3000:]
    assert first.changed > 0
    config = kubectl("get", "configmap", "cilium-config", "-n", "kube-system", "-o", "json")
    assert config["data"]["enable-wireguard"] == "true"
    assert "enable-ipsec" not in config["data"]
    assert kubectl("get", "secret", "cilium-ipsec-keys", "-n", "kube-system", check=False).returncode != 0

    second = run_playbook(CILIUM, cluster, WIREGUARD)
    assert second.returncode == 0, second.stdout[-3000:]
    assert second.changed == 0, second.stdout[-3000:]
    assert "kubecrypt-worker-1: " in second.stdout


def test_boolean_strings_accepted(cluster, kubectl):
    # ansible-playbook -e name=false passes the string "false", which role argument validation
    # accepts as a boolean while a bare when: condition rejects it.
    strings = dict(
        WIREGUARD,
        cilium_encryption_node_encryption="false",
        cilium_encryption_istio_compatible="false",
        cilium_encryption_rotate_key="false",
    )
    run = run_playbook(CILIUM, cluster, strings)
    assert run.returncode == 0, run.stdout[-3000:]
    assert run.changed == 0, run.stdout[-3000:]


def test_wireguard_type_typo_refused(cluster, kubectl):
    assert_refused(
        kubectl,
        cluster,
        {"cilium_encryption_type": "WireGuard"},
        "value of cilium_encryption_type must be one of: ipsec, wireguard, got: WireGuard",
    )


def test_ipsec_with_cni_chaining_refused(cluster, kubectl):
    assert_refused(
        kubectl,
        cluster,
        {"cilium_encryption_helm_values": {"cni": {"chainingMode": "aws-cni"}}},
        "IPsec encryption does not work with CNI chaining, but cni.chainingMode is 'aws-cni'. "
        "Use cilium_encryption_type: wireguard or remove cni.chainingMode.",
    )


def test_ipsec_with_l7_proxy_without_transparent_dns_refused(cluster, kubectl):
    assert_refused(
        kubectl,
        cluster,
        {"cilium_encryption_helm_values": {"dnsProxy": {"enableTransparentMode": False}}},
        "IPsec with the L7 proxy needs DNS proxy transparent mode, but "
        "dnsProxy.enableTransparentMode is false and l7Proxy is on; the agent would not start.",
    )


def test_removed_key_in_extra_values_refused(cluster, kubectl):
    assert_refused(
        kubectl,
        cluster,
        {"cilium_encryption_helm_values": {"encryption": {"keyFile": "keys"}}},
        "encryption.keyFile in cilium_encryption_helm_values was removed in Cilium 1.16, and "
        "the 1.20.0 chart fails on it. Use encryption.ipsec.keyFile instead.",
    )


def test_ignored_key_for_target_version_refused(cluster, kubectl):
    assert_refused(
        kubectl,
        cluster,
        {"cilium_encryption_helm_values": {"encryption": {"ipsec": {"interface": "eth0"}}}},
        "encryption.ipsec.interface in cilium_encryption_helm_values has no effect from Cilium "
        "1.20, because the 1.20.0 chart no longer renders it. Use devices instead.",
    )


def test_type_typo_in_extra_values_refused(cluster, kubectl):
    assert_refused(
        kubectl,
        cluster,
        {"cilium_encryption_helm_values": {"encryption": {"type": "WireGuard"}}},
        'encryption.type "WireGuard" in cilium_encryption_helm_values is invalid. Use ipsec or '
        "wireguard in lower case",
    )


def test_rotation_refused_mid_rollout(cluster, kubectl):
    ipsec = run_playbook(CILIUM, cluster)
    assert ipsec.returncode == 0, ipsec.stdout[-3000:]
    # Pause the rollout and change the pod template: the DaemonSet is then mid-rollout.
    kubectl("rollout", "pause", "daemonset/cilium", "-n", "kube-system", check=False)
    patch = {"spec": {"updateStrategy": {"type": "OnDelete"}, "template": {"metadata": {"annotations": {"test/rollout": "1"}}}}}
    kubectl("patch", "daemonset", "cilium", "-n", "kube-system", "--type=merge", "-p", json.dumps(patch))
    try:
        run = run_playbook("playbooks/rotate_ipsec_key.yml", cluster)
        assert run.returncode != 0
        assert "The Cilium agent DaemonSet is mid-rollout (0 of 3 agents updated, 3 ready)." in " ".join(run.stdout.split())
    finally:
        kubectl("rollout", "restart", "daemonset/cilium", "-n", "kube-system")
        patch = {"spec": {"updateStrategy": {"type": "RollingUpdate"}}}
        kubectl("patch", "daemonset", "cilium", "-n", "kube-system", "--type=merge", "-p", json.dumps(patch))


def test_render_writes_files_without_a_cluster(tmp_path):
    nowhere = tmp_path / "nowhere.kubeconfig"
    nowhere.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:9"}}],
        "users": [{"name": "u", "user": {"token": "x"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "c",
    }))
    render_dir = tmp_path / "rendered"
    extra = {"cilium_encryption_render_dir": str(render_dir), "cilium_encryption_render_ipsec_key": True}

    first = run_playbook(CILIUM, str(nowhere), extra, verbosity=3)
    assert first.returncode == 0, first.stdout[-3000:]
    values = yaml.safe_load((render_dir / "cilium-values.yaml").read_text())
    assert values["encryption"]["enabled"] is True
    assert values["encryption"]["type"] == "ipsec"
    manifests = list(yaml.safe_load_all((render_dir / "cilium-manifests.yaml").read_text()))
    config = [m for m in manifests if m and m["kind"] == "ConfigMap" and m["metadata"]["name"] == "cilium-config"]
    assert config[0]["data"]["enable-ipsec"] == "true"

    key_file = render_dir / "cilium-ipsec-keys.yaml"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    line = yaml.safe_load(key_file.read_text())["stringData"]["keys"]
    assert KEY_LINE.match(line)
    key_hex = line.split(" ")[2]
    assert key_hex not in first.stdout + first.stderr
    assert line not in first.stdout + first.stderr
    # The key is only in the 0600 file the run was asked to write.
    for other in render_dir.iterdir():
        if other != key_file:
            assert key_hex not in other.read_text()

    second = run_playbook(CILIUM, str(nowhere), extra)
    assert second.returncode == 0, second.stdout[-3000:]
    assert second.changed == 0, second.stdout[-3000:]
    assert yaml.safe_load(key_file.read_text())["stringData"]["keys"] == line


def test_render_writes_no_key_unless_asked(tmp_path):
    render_dir = tmp_path / "rendered"
    run = run_playbook(CILIUM, None, {"cilium_encryption_render_dir": str(render_dir)})
    assert run.returncode == 0, run.stdout[-3000:]
    assert (render_dir / "cilium-values.yaml").exists()
    assert not (render_dir / "cilium-ipsec-keys.yaml").exists()
