"""The encryption_info module against a real API server, with the Cilium objects the test writes.

Every node of the local control plane is simulated by kwok, so no Cilium agent runs and exec
into an agent pod cannot succeed. The tests check what the module reads from the API, and that
it reports the agents as not exec'd with the reason. The agent output parsers are tested on real
samples in tests/unit. Each test uses a namespace of its own for cilium-config, the Secret and
the agent pods. CiliumNodes are cluster-scoped and named after the Nodes, so the fixture saves
any that exist and puts them back afterwards.
"""

import base64
import json
import os
import secrets
import uuid

import pytest

from harness import TESTS_DIR, run_module

MODULE = "kubecrypt.pod_encryption.encryption_info"
CRD = os.path.join(TESTS_DIR, "fixtures", "crds", "cilium", "ciliumnodes.yaml")
HEX40 = "0123456789abcdef0123456789abcdef01234567"
KEY_LINE = "4+ rfc4106(gcm(aes)) {0} 128".format(HEX40)
KWOK_REASON = "not exec'd: kwok simulates this node, so no agent process runs there"
FIELD_MANAGER = "encryption-info-test"


@pytest.fixture(scope="module")
def workers(kubectl):
    kubectl("apply", "-f", CRD)
    kubectl(
        "wait",
        "--for=condition=Established",
        "crd/ciliumnodes.cilium.io",
        "--timeout=60s",
    )
    names = sorted(
        item["metadata"]["name"]
        for item in kubectl("get", "nodes", "-o", "json")["items"]
    )
    assert names, "the control plane has no nodes"
    return names


@pytest.fixture
def ciliumnodes(kubectl, workers):
    """Write CiliumNodes for the workers, and restore or delete them afterwards."""
    saved = {}
    for name in workers:
        found = kubectl("get", "ciliumnode", name, "-o", "json", check=False)
        saved[name] = found if isinstance(found, dict) else None

    def write(spis=None, keys=None):
        for index, name in enumerate(workers):
            annotations = {}
            if keys and keys[index]:
                annotations["network.cilium.io/wg-pub-key"] = keys[index]
            spec = {}
            if spis and spis[index] is not None:
                spec["encryption"] = {"key": spis[index]}
            manifest = {
                "apiVersion": "cilium.io/v2",
                "kind": "CiliumNode",
                "metadata": {"name": name, "annotations": annotations},
                "spec": spec,
            }
            kubectl(
                "apply",
                "--server-side",
                "--force-conflicts",
                "--field-manager=" + FIELD_MANAGER,
                "-f",
                "-",
                stdin=json.dumps(manifest),
            )

    yield write
    for name, original in saved.items():
        if original is None:
            kubectl("delete", "ciliumnode", name, "--ignore-not-found")
            continue
        metadata = original["metadata"]
        restored = {
            "apiVersion": "cilium.io/v2",
            "kind": "CiliumNode",
            "metadata": {
                "name": name,
                "labels": metadata.get("labels") or {},
                "annotations": metadata.get("annotations") or {},
            },
            "spec": original.get("spec") or {},
        }
        kubectl("replace", "-f", "-", stdin=json.dumps(restored))


@pytest.fixture
def namespace(kubectl):
    name = "posture-" + uuid.uuid4().hex[:8]
    kubectl("create", "namespace", name)
    yield name
    kubectl("delete", "namespace", name, "--wait=false")


def apply(kubectl, manifest):
    kubectl("apply", "-f", "-", stdin=json.dumps(manifest))


def write_config(kubectl, namespace, data):
    apply(
        kubectl,
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "cilium-config", "namespace": namespace},
            "data": data,
        },
    )


def write_secret(kubectl, namespace, line=KEY_LINE):
    apply(
        kubectl,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "cilium-ipsec-keys", "namespace": namespace},
            "data": {"keys": base64.b64encode(line.encode()).decode()},
        },
    )


def start_agents(kubectl, namespace, workers, image="quay.io/cilium/cilium:v1.16.5"):
    """Create one agent pod per node. kwok marks them Running, but no process runs in them."""
    for name in workers:
        apply(
            kubectl,
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": "cilium-" + name,
                    "namespace": namespace,
                    "labels": {"k8s-app": "cilium"},
                },
                "spec": {
                    "nodeName": name,
                    "containers": [{"name": "cilium-agent", "image": image}],
                },
            },
        )
    kubectl(
        "wait",
        "--for=jsonpath={.status.phase}=Running",
        "pod",
        "-l",
        "k8s-app=cilium",
        "-n",
        namespace,
        "--timeout=60s",
    )


def ipsec_cluster(kubectl, namespace, workers, ciliumnodes, spis, image=None):
    write_config(
        kubectl,
        namespace,
        {
            "enable-ipsec": "true",
            "ipsec-key-file": "/etc/ipsec/keys",
            "enable-ipsec-key-watcher": "true",
            "ipsec-key-rotation-duration": "5m0s",
            "debug": "false",
        },
    )
    write_secret(kubectl, namespace)
    if image:
        start_agents(kubectl, namespace, workers, image=image)
    else:
        start_agents(kubectl, namespace, workers)
    ciliumnodes(spis=spis)


def failed(result):
    return sorted((check["name"], check["node"]) for check in result["failed_checks"])


def wireguard_key():
    return base64.b64encode(secrets.token_bytes(32)).decode()


def test_ipsec_all_nodes_on_secret_spi(
    kubeconfig, kubectl, workers, ciliumnodes, namespace
):
    ipsec_cluster(kubectl, namespace, workers, ciliumnodes, spis=[4] * len(workers))
    arguments = {"namespace": namespace, "expected_type": "ipsec"}

    result, process = run_module(MODULE, arguments, kubeconfig, verbosity=3)
    assert result.get("failed") is not True, result.get("msg")
    assert result["changed"] is False
    assert result["ok"] is True, result["failed_checks"]
    assert result["mode"] == "ipsec"
    assert result["config"]["ipsec-key-file"] == "/etc/ipsec/keys"
    assert "debug" not in result["config"]
    assert result["ipsec_key"]["spi"] == 4
    assert result["ipsec_key"]["data_key"] == "keys"
    assert result["ipsec_key"]["fingerprint"].startswith("SHA256:")
    assert [node["name"] for node in result["nodes"]] == workers
    assert [node["spi"] for node in result["nodes"]] == [4] * len(workers)
    assert [node["agent_pod"] for node in result["nodes"]] == [
        "cilium-" + name for name in workers
    ]
    assert [node["cilium_version"] for node in result["nodes"]] == ["1.16.5"] * len(
        workers
    )
    assert len(result["summary"]) == len(workers) + 1

    output = process.stdout + process.stderr
    assert HEX40 not in output
    assert base64.b64encode(KEY_LINE.encode()).decode() not in output


def test_check_mode_reports_the_same(
    kubeconfig, kubectl, workers, ciliumnodes, namespace
):
    ipsec_cluster(kubectl, namespace, workers, ciliumnodes, spis=[4] * len(workers))
    arguments = {"namespace": namespace, "expected_type": "ipsec"}

    applied = run_module(MODULE, arguments, kubeconfig)[0]
    checked = run_module(MODULE, arguments, kubeconfig, check=True)[0]
    assert checked["changed"] is False
    assert checked["checks"] == applied["checks"]
    assert checked["summary"] == applied["summary"]


def test_ipsec_node_on_old_spi(kubeconfig, kubectl, workers, ciliumnodes, namespace):
    spis = [4] * len(workers)
    spis[1] = 3
    ipsec_cluster(kubectl, namespace, workers, ciliumnodes, spis=spis)
    stale = workers[1]

    result, _output = run_module(
        MODULE, {"namespace": namespace, "expected_type": "ipsec"}, kubeconfig
    )
    assert result["ok"] is False
    assert failed(result) == [("ipsec_spi", stale), ("ipsec_spi_consistent", None)]
    consistent = [c for c in result["checks"] if c["name"] == "ipsec_spi_consistent"][0]
    assert "{0} (SPI 3)".format(stale) in consistent["message"]
    assert workers[0] not in consistent["message"]
    assert result["ipsec_rotation_in_progress"] is True
    assert "SPI 3" in result["summary"][2]


def test_fail_on_error_names_the_node(
    kubeconfig, kubectl, workers, ciliumnodes, namespace
):
    spis = [4] * len(workers)
    spis[-1] = 3
    ipsec_cluster(kubectl, namespace, workers, ciliumnodes, spis=spis)

    arguments = {
        "namespace": namespace,
        "expected_type": "ipsec",
        "fail_on_error": True,
    }
    result = run_module(MODULE, arguments, kubeconfig)[0]
    assert result["failed"] is True
    assert "ipsec_spi on {0}".format(workers[-1]) in result["msg"]
    assert result["ok"] is False
    assert HEX40 not in result["msg"]


def test_kwok_agents_not_execd_in_auto(
    kubeconfig, kubectl, workers, ciliumnodes, namespace
):
    ipsec_cluster(kubectl, namespace, workers, ciliumnodes, spis=[4] * len(workers))

    result = run_module(MODULE, {"namespace": namespace}, kubeconfig)[0]
    for node in result["nodes"]:
        assert node["exec_status"] == KWOK_REASON
        assert node["status"] is None
        assert node["encrypt_status"] is None
    assert "agent_exec" not in [check["name"] for check in result["checks"]]
    assert KWOK_REASON in result["summary"][1]


def test_exec_always_fails_on_kwok(
    kubeconfig, kubectl, workers, ciliumnodes, namespace
):
    ipsec_cluster(kubectl, namespace, workers, ciliumnodes, spis=[4] * len(workers))

    arguments = {"namespace": namespace, "exec_agents": "always", "exec_timeout": 10}
    result = run_module(MODULE, arguments, kubeconfig)[0]
    assert result["ok"] is False
    assert failed(result) == [("agent_exec", name) for name in workers]
    for node in result["nodes"]:
        assert node["exec_status"].startswith(
            "not exec'd: Failed to run 'cilium-dbg status' in pod"
        )
        assert node["agent_pod"] in node["exec_status"]


def test_cilium_1_14_uses_old_cli(kubeconfig, kubectl, workers, ciliumnodes, namespace):
    ipsec_cluster(
        kubectl,
        namespace,
        workers,
        ciliumnodes,
        spis=[4] * len(workers),
        image="quay.io/cilium/cilium:v1.14.9",
    )

    arguments = {"namespace": namespace, "exec_agents": "always", "exec_timeout": 10}
    result = run_module(MODULE, arguments, kubeconfig)[0]
    for node in result["nodes"]:
        assert node["cilium_version"] == "1.14.9"
        assert "Failed to run 'cilium status' in pod" in node["exec_status"]


def test_exec_never(kubeconfig, kubectl, workers, ciliumnodes, namespace):
    ipsec_cluster(kubectl, namespace, workers, ciliumnodes, spis=[4] * len(workers))

    result, _output = run_module(
        MODULE, {"namespace": namespace, "exec_agents": "never"}, kubeconfig
    )
    assert result["ok"] is True
    assert [node["exec_status"] for node in result["nodes"]] == [
        "not exec'd: exec_agents is never"
    ] * len(workers)


def test_wireguard_duplicate_public_keys(
    kubeconfig, kubectl, workers, ciliumnodes, namespace
):
    write_config(
        kubectl, namespace, {"enable-wireguard": "true", "encrypt-node": "false"}
    )
    start_agents(kubectl, namespace, workers)
    shared = wireguard_key()
    keys = [shared, shared] + [wireguard_key() for worker in workers[2:]]
    ciliumnodes(keys=keys)

    result, _output = run_module(
        MODULE, {"namespace": namespace, "expected_type": "wireguard"}, kubeconfig
    )
    assert result["mode"] == "wireguard"
    assert result["ipsec_key"] is None
    assert failed(result) == [("wireguard_keys_unique", None)]
    duplicate = [c for c in result["checks"] if c["name"] == "wireguard_keys_unique"][0]
    assert "{0}, {1}".format(workers[0], workers[1]) in duplicate["message"]
    assert [node["wireguard_public_key"] for node in result["nodes"]] == keys


def test_wireguard_unique_keys(kubeconfig, kubectl, workers, ciliumnodes, namespace):
    write_config(kubectl, namespace, {"enable-wireguard": "true"})
    start_agents(kubectl, namespace, workers)
    ciliumnodes(keys=[wireguard_key() for worker in workers])

    result = run_module(MODULE, {"namespace": namespace}, kubeconfig)[0]
    assert result["ok"] is True, result["failed_checks"]
    assert result["mode"] == "wireguard"


def test_expected_type_mismatch(kubeconfig, kubectl, workers, ciliumnodes, namespace):
    write_config(kubectl, namespace, {"enable-wireguard": "true"})
    start_agents(kubectl, namespace, workers)
    ciliumnodes(keys=[wireguard_key() for worker in workers])

    result, _output = run_module(
        MODULE, {"namespace": namespace, "expected_type": "ipsec"}, kubeconfig
    )
    assert ("encryption_mode", None) in failed(result)
    assert ("ipsec_key", None) in failed(result)
    assert result["ipsec_key"]["found"] is False


def test_namespace_without_cilium(kubeconfig, namespace):
    result = run_module(MODULE, {"namespace": namespace}, kubeconfig)[0]
    assert result.get("failed") is not True, result.get("msg")
    assert result["ok"] is False
    assert result["mode"] is None
    assert ("cilium_config", None) in failed(result)
    for node in result["nodes"]:
        assert node["agent_pod"] is None
        assert (
            node["exec_status"] == "not exec'd: no Cilium agent pod runs on this node"
        )


def test_invalid_cilium_version(kubeconfig, namespace):
    result, _output = run_module(
        MODULE, {"namespace": namespace, "cilium_version": "one"}, kubeconfig
    )
    assert result["failed"] is True
    assert "cilium_version 'one' is not a version" in result["msg"]
