"""Unit tests for the posture checks that the encryption_info module runs.

The inputs are the dicts the Kubernetes API returns. Where an agent's output is needed, the
tests use the real samples under fixtures/cilium_dbg (sources in SOURCES.md), because no
Cilium agent can run here.
"""

import base64
import copy
import os
import secrets

import pytest

from ansible_collections.kubecrypt.pod_encryption.plugins.module_utils._posture import (
    agent_pods_by_node,
    agent_version,
    checked_type,
    describe_ipsec_secret,
    encryption_mode,
    evaluate,
    exec_skip_reason,
    read_config,
    secret_data_key,
)

FIXTURES = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "fixtures", "cilium_dbg"
)
HEX40 = "0123456789abcdef0123456789abcdef01234567"
NAMES = ["node-a", "node-b", "node-c"]
# Public keys from the samples, so that agent output and annotations can agree.
AKS_KEY = "9HDBqS5T5+aGrPZW6QYk3BN7GZoa4k/t27IQkY1Ogw8="
EKS_KEY = "HMfZu016CF/0EYMl0tACI3qeaT2TePs831EfJZmzdQw="


def sample(name):
    with open(os.path.join(FIXTURES, name)) as handle:
        return handle.read()


def wireguard_key():
    return base64.b64encode(secrets.token_bytes(32)).decode()


def node(name, kwok=False):
    annotations = {"kwok.x-k8s.io/node": "fake"} if kwok else {}
    return {"metadata": {"name": name, "annotations": annotations}}


def ciliumnode(name, spi=None, key=None):
    annotations = {"network.cilium.io/wg-pub-key": key} if key else {}
    spec = {"encryption": {"key": spi}} if spi is not None else {}
    return {"metadata": {"name": name, "annotations": annotations}, "spec": spec}


def pod(
    name,
    node_name,
    phase="Running",
    image="quay.io/cilium/cilium:v1.16.5",
    created="2026-12-01T00:00:00Z",
):
    return {
        "metadata": {"name": name, "creationTimestamp": created},
        "spec": {
            "nodeName": node_name,
            "containers": [{"name": "cilium-agent", "image": image}],
        },
        "status": {"phase": phase},
    }


def secret_with(line, data_key="keys"):
    return {"data": {data_key: base64.b64encode(line.encode()).decode()}}


def ipsec_summary(spi=4):
    line = "{0}+ rfc4106(gcm(aes)) {1} 128".format(spi, HEX40)
    summary, masked = describe_ipsec_secret(
        secret_with(line), "cilium-ipsec-keys", "kube-system", "keys"
    )
    return summary


def snapshot(
    mode="ipsec", spis=(4, 4, 4), keys=None, agents=None, kwok=True, extra_config=None
):
    config = (
        {"enable-ipsec": "true"} if mode == "ipsec" else {"enable-wireguard": "true"}
    )
    config.update(extra_config or {})
    keys = keys or [None] * len(NAMES)
    return {
        "namespace": "kube-system",
        "config": config,
        "secret": ipsec_summary() if mode == "ipsec" else None,
        "nodes": [node(name, kwok=kwok) for name in NAMES],
        "ciliumnodes": [
            ciliumnode(name, spi, key) for name, spi, key in zip(NAMES, spis, keys)
        ],
        "agents": agents
        or dict(
            (
                name,
                {
                    "pod": pod("cilium-" + name, name),
                    "skip_reason": "kwok simulates this node",
                },
            )
            for name in NAMES
        ),
    }


def executed(status_text, encrypt_text, name="node-a"):
    return {
        "pod": pod("cilium-" + name, name),
        "skip_reason": None,
        "exec_error": None,
        "status": status_text,
        "encrypt_status": encrypt_text,
    }


def checks_named(result, name, node_name=None):
    return [
        check
        for check in result["checks"]
        if check["name"] == name and check["node"] == node_name
    ]


def only_check(result, name, node_name=None):
    found = checks_named(result, name, node_name)
    assert len(found) == 1, found
    return found[0]


def failed_names(result):
    return sorted((check["name"], check["node"]) for check in result["failed_checks"])


# cilium-config ----------------------------------------------------------------------------


def test_read_config_keeps_encryption_keys():
    config = read_config(
        {
            "data": {
                "enable-ipsec": "true",
                "ipsec-key-file": "/etc/ipsec/keys",
                "debug": "false",
            }
        }
    )
    assert config == {"enable-ipsec": "true", "ipsec-key-file": "/etc/ipsec/keys"}


def test_read_config_missing_configmap():
    assert read_config(None) is None


@pytest.mark.parametrize(
    "data, mode",
    [
        ({"enable-ipsec": "true"}, "ipsec"),
        ({"enable-wireguard": "true", "enable-ipsec": "false"}, "wireguard"),
        ({"enable-ipsec": "true", "enable-wireguard": "true"}, "conflict"),
        ({"enable-ztunnel": "true"}, "ztunnel"),
        ({"enable-ipsec": "false"}, "disabled"),
        ({}, "disabled"),
        (None, None),
    ],
)
def test_encryption_mode(data, mode):
    assert encryption_mode(data) == mode


@pytest.mark.parametrize(
    "mode, expected, checked",
    [
        ("ipsec", None, "ipsec"),
        ("disabled", None, None),
        ("ztunnel", None, None),
        ("disabled", "wireguard", "wireguard"),
    ],
)
def test_checked_type(mode, expected, checked):
    assert checked_type(mode, expected) == checked


@pytest.mark.parametrize(
    "config, requested, data_key",
    [
        ({"ipsec-key-file": "/etc/ipsec/keys"}, None, "keys"),
        ({"ipsec-key-file": "/etc/ipsec-alt/custom-key"}, None, "custom-key"),
        ({}, None, "keys"),
        (None, None, "keys"),
        ({"ipsec-key-file": "/etc/ipsec/keys"}, "other", "other"),
    ],
)
def test_secret_data_key(config, requested, data_key):
    assert secret_data_key(config, requested) == data_key


# The IPsec key Secret ---------------------------------------------------------------------


def test_secret_summary_has_no_key_material():
    line = "4+ rfc4106(gcm(aes)) {0} 128".format(HEX40)
    summary, masked = describe_ipsec_secret(
        secret_with(line), "cilium-ipsec-keys", "kube-system", "keys"
    )
    assert summary["spi"] == 4
    assert summary["per_tunnel"] is True
    assert summary["key_bits"] == 128
    assert summary["fingerprint"].startswith("SHA256:")
    assert summary["problem"] is None
    assert HEX40 not in repr(summary)
    assert HEX40 in masked
    assert line in masked
    assert base64.b64encode(line.encode()).decode() in masked


def test_secret_masks_no_short_words():
    line = "4+ rfc4106(gcm(aes)) {0} 128".format(HEX40)
    summary, masked = describe_ipsec_secret(
        secret_with(line), "cilium-ipsec-keys", "kube-system", "keys"
    )
    assert "128" not in masked
    assert "4+" not in masked
    assert all(len(item) >= 8 for item in masked)


def test_secret_missing():
    summary, masked = describe_ipsec_secret(
        None, "cilium-ipsec-keys", "kube-system", "keys"
    )
    assert summary["found"] is False
    assert "not found" in summary["problem"]
    assert "cilium_ipsec_key" in summary["problem"]
    assert masked == set()


def test_secret_missing_data_key():
    line = "4+ rfc4106(gcm(aes)) {0} 128".format(HEX40)
    summary, masked = describe_ipsec_secret(
        secret_with(line, "other"), "cilium-ipsec-keys", "kube-system", "keys"
    )
    assert "no data key 'keys'" in summary["problem"]
    assert "other" in summary["problem"]
    assert summary["spi"] is None


def test_secret_global_key_keeps_spi():
    line = "3 rfc4106(gcm(aes)) {0} 128".format(HEX40)
    summary, masked = describe_ipsec_secret(
        secret_with(line), "cilium-ipsec-keys", "kube-system", "keys"
    )
    assert "has no '+'" in summary["problem"]
    assert summary["spi"] == 3
    assert HEX40 not in summary["problem"]
    assert HEX40 in masked


def test_secret_invalid_key_hex_is_masked():
    line = "5+ rfc4106(gcm(aes)) {0} 128".format(HEX40[:30])
    summary, masked = describe_ipsec_secret(
        secret_with(line), "cilium-ipsec-keys", "kube-system", "keys"
    )
    assert "30 hex characters" in summary["problem"]
    assert summary["spi"] == 5
    assert HEX40[:30] in masked


def test_secret_not_base64():
    summary, masked = describe_ipsec_secret(
        {"data": {"keys": "%%%not-base64%%%"}},
        "cilium-ipsec-keys",
        "kube-system",
        "keys",
    )
    assert "not base64-encoded" in summary["problem"]
    assert "%%%not-base64%%%" in masked


# Agent pods and exec decisions ------------------------------------------------------------


def test_agent_pods_prefer_running():
    pods = [
        pod("cilium-old", "node-a", phase="Running", created="2026-12-01T00:00:00Z"),
        pod("cilium-new", "node-a", phase="Pending", created="2026-12-02T00:00:00Z"),
        pod("cilium-b", "node-b"),
        {
            "metadata": {"name": "unscheduled"},
            "spec": {},
            "status": {"phase": "Pending"},
        },
    ]
    chosen = agent_pods_by_node(pods)
    assert sorted(chosen) == ["node-a", "node-b"]
    assert chosen["node-a"]["metadata"]["name"] == "cilium-old"


def test_agent_pods_prefer_newest():
    pods = [
        pod("cilium-1", "node-a", created="2026-12-01T00:00:00Z"),
        pod("cilium-2", "node-a", created="2026-12-03T00:00:00Z"),
    ]
    assert agent_pods_by_node(pods)["node-a"]["metadata"]["name"] == "cilium-2"


def test_agent_version_from_image():
    assert agent_version(pod("c", "n", image="quay.io/cilium/cilium:v1.14.9")) == (
        1,
        14,
        9,
    )
    assert (
        agent_version(
            {"spec": {"containers": [{"name": "other", "image": "x:v1.2.3"}]}}
        )
        is None
    )


@pytest.mark.parametrize(
    "kwok, agent_pod, exec_agents, reason",
    [
        (False, pod("c", "n"), "never", "exec_agents is never"),
        (False, None, "auto", "no Cilium agent pod runs on this node"),
        (True, None, "always", "no Cilium agent pod runs on this node"),
        (
            True,
            pod("c", "n"),
            "auto",
            "kwok simulates this node, so no agent process runs there",
        ),
        (True, pod("c", "n"), "always", None),
        (False, pod("c", "n", phase="Pending"), "auto", "agent pod c is Pending"),
        (False, pod("c", "n"), "auto", None),
    ],
)
def test_exec_skip_reason(kwok, agent_pod, exec_agents, reason):
    assert exec_skip_reason(node("n", kwok=kwok), agent_pod, exec_agents) == reason


# IPsec posture from the API ----------------------------------------------------------------


def test_ipsec_all_nodes_on_secret_spi():
    result = evaluate(snapshot(), expected_type="ipsec")
    assert result["ok"] is True
    assert result["failed_checks"] == []
    assert result["mode"] == "ipsec"
    assert result["ipsec_key"]["spi"] == 4
    assert result["ipsec_rotation_in_progress"] is False
    assert [report["spi"] for report in result["nodes"]] == [4, 4, 4]
    assert only_check(result, "ipsec_spi_consistent")["passed"] is True
    assert HEX40 not in repr(result)


def test_ipsec_node_on_old_spi():
    result = evaluate(snapshot(spis=(4, 3, 4)), expected_type="ipsec")
    assert result["ok"] is False
    assert failed_names(result) == [
        ("ipsec_spi", "node-b"),
        ("ipsec_spi_consistent", None),
    ]
    consistent = only_check(result, "ipsec_spi_consistent")
    assert "node-b (SPI 3)" in consistent["message"]
    assert "node-a" not in consistent["message"]
    assert result["ipsec_rotation_in_progress"] is True


def test_ipsec_node_without_spi():
    result = evaluate(snapshot(spis=(4, None, 4)), expected_type="ipsec")
    assert "node-b (SPI none)" in only_check(result, "ipsec_spi_consistent")["message"]
    assert only_check(result, "ipsec_spi", "node-b")["passed"] is False


def test_ipsec_secret_problem_fails_key_check():
    state = snapshot()
    state["secret"], masked = describe_ipsec_secret(
        None, "cilium-ipsec-keys", "kube-system", "keys"
    )
    result = evaluate(state, expected_type="ipsec")
    assert only_check(result, "ipsec_key")["passed"] is False
    assert checks_named(result, "ipsec_spi_consistent") == []
    assert checks_named(result, "ipsec_spi", "node-a") == []


def test_ipsec_kwok_nodes_not_execd():
    result = evaluate(snapshot(), expected_type="ipsec")
    for report in result["nodes"]:
        assert report["exec_status"] == "not exec'd: kwok simulates this node"
        assert report["status"] is None
        assert report["encrypt_status"] is None
        assert [check["name"] for check in report["checks"]] == [
            "ciliumnode",
            "agent_running",
            "ipsec_spi",
        ]


# IPsec posture from the agents ------------------------------------------------------------


def ipsec_agents(encrypt_samples):
    return dict(
        (name, executed(sample("status-ipsec-tab.txt"), sample(encrypt), name))
        for name, encrypt in zip(NAMES, encrypt_samples)
    )


def test_ipsec_agents_healthy():
    agents = ipsec_agents(["encrypt-ipsec-docs.txt"] * 3)
    result = evaluate(snapshot(agents=agents, kwok=False), expected_type="ipsec")
    assert result["ok"] is True
    report = result["nodes"][0]
    assert report["exec_status"] == "exec'd"
    assert report["encrypt_status"]["ipsec"]["keys_in_use"] == 4
    assert only_check(result, "xfrm_errors", "node-a")["passed"] is True
    assert (
        only_check(result, "decryption_interfaces", "node-a")["message"]
        == "Decryption interfaces: eth0, eth1, eth2."
    )
    assert only_check(result, "ipsec_sequence_number", "node-a")["passed"] is True


def test_ipsec_agent_with_xfrm_errors():
    agents = ipsec_agents(
        [
            "encrypt-ipsec-docs.txt",
            "encrypt-ipsec-errors-rendered.txt",
            "encrypt-ipsec-docs.txt",
        ]
    )
    result = evaluate(snapshot(agents=agents, kwok=False), expected_type="ipsec")
    errors = only_check(result, "xfrm_errors", "node-b")
    assert errors["passed"] is False
    assert "Errors: 608140" in errors["message"]
    assert "XfrmInStateProtoError 141222" in errors["message"]
    assert failed_names(result) == [("xfrm_errors", "node-b")]


def test_ipsec_agent_without_decryption_interfaces():
    agents = ipsec_agents(
        [
            "encrypt-ipsec-docs.txt",
            "encrypt-ipsec-docs.txt",
            "encrypt-ipsec-kpr-no-interfaces.txt",
        ]
    )
    result = evaluate(snapshot(agents=agents, kwok=False), expected_type="ipsec")
    assert only_check(result, "decryption_interfaces", "node-c")["passed"] is False
    assert failed_names(result) == [("decryption_interfaces", "node-c")]


def test_ipsec_rotation_seen_in_key_counts():
    agents = ipsec_agents(
        [
            "encrypt-ipsec-one-key.txt",
            "encrypt-ipsec-errors-one-counter.txt",
            "encrypt-ipsec-one-key.txt",
        ]
    )
    result = evaluate(snapshot(agents=agents, kwok=False), expected_type="ipsec")
    assert result["ipsec_rotation_in_progress"] is True
    assert [n["encrypt_status"]["ipsec"]["keys_in_use"] for n in result["nodes"]] == [
        1,
        2,
        1,
    ]


def test_ipsec_sequence_number_near_limit():
    text = "Encryption: IPsec\nDecryption interface(s): eth0\nKeys in use: 2\nMax Seq. Number: 0xf0000000/0xffffffff\nErrors: 0\n"
    agents = ipsec_agents(["encrypt-ipsec-docs.txt"] * 3)
    agents["node-a"]["encrypt_status"] = text
    result = evaluate(snapshot(agents=agents, kwok=False), expected_type="ipsec")
    check = only_check(result, "ipsec_sequence_number", "node-a")
    assert check["passed"] is False
    assert "0xf0000000/0xffffffff" in check["message"]


def test_ipsec_agent_reports_other_mode():
    agents = ipsec_agents(["encrypt-ipsec-docs.txt"] * 3)
    agents["node-a"] = executed(
        sample("status-disabled-1.18.4.txt"), sample("encrypt-disabled.txt")
    )
    result = evaluate(snapshot(agents=agents, kwok=False), expected_type="ipsec")
    mode = only_check(result, "agent_mode", "node-a")
    assert mode["passed"] is False
    assert "mode disabled, expected ipsec" in mode["message"]
    assert checks_named(result, "xfrm_errors", "node-a") == []


def test_ipsec_agent_without_ipsec_state():
    agents = ipsec_agents(["encrypt-ipsec-docs.txt"] * 3)
    agents["node-a"]["encrypt_status"] = "Encryption: IPsec\n"
    result = evaluate(snapshot(agents=agents, kwok=False), expected_type="ipsec")
    assert only_check(result, "xfrm_errors", "node-a")["passed"] is False


def test_agent_output_unreadable():
    agents = ipsec_agents(["encrypt-ipsec-docs.txt"] * 3)
    agents["node-b"]["status"] = "OK\n"
    result = evaluate(snapshot(agents=agents, kwok=False), expected_type="ipsec")
    problem = only_check(result, "agent_output", "node-b")
    assert problem["passed"] is False
    assert "no 'Encryption:' line" in problem["message"]
    # The encrypt status output still parses, so the agent checks run on it.
    assert only_check(result, "agent_mode", "node-b")["passed"] is True


# Exec failures ----------------------------------------------------------------------------


def failed_exec(name, error="connection refused"):
    return {
        "pod": pod("cilium-" + name, name),
        "skip_reason": None,
        "exec_error": error,
    }


def test_exec_failure_in_auto_mode_is_reported():
    agents = dict((name, failed_exec(name)) for name in NAMES)
    result = evaluate(
        snapshot(agents=agents), expected_type="ipsec", exec_agents="auto"
    )
    assert result["ok"] is True
    assert result["nodes"][0]["exec_status"] == "not exec'd: connection refused"
    assert checks_named(result, "agent_exec", "node-a") == []


def test_exec_failure_in_always_mode_fails():
    agents = dict((name, failed_exec(name)) for name in NAMES)
    result = evaluate(
        snapshot(agents=agents), expected_type="ipsec", exec_agents="always"
    )
    assert result["ok"] is False
    check = only_check(result, "agent_exec", "node-c")
    assert check["passed"] is False
    assert "connection refused" in check["message"]
    assert failed_names(result) == [("agent_exec", name) for name in NAMES]


# WireGuard --------------------------------------------------------------------------------


def test_wireguard_unique_keys():
    keys = [wireguard_key() for name in NAMES]
    result = evaluate(snapshot(mode="wireguard", keys=keys), expected_type="wireguard")
    assert result["ok"] is True
    assert only_check(result, "wireguard_keys_unique")["passed"] is True
    assert [report["wireguard_public_key"] for report in result["nodes"]] == keys
    assert result["ipsec_key"] is None
    assert checks_named(result, "ipsec_spi_consistent") == []


def test_wireguard_duplicate_keys():
    shared = wireguard_key()
    keys = [shared, wireguard_key(), shared]
    result = evaluate(snapshot(mode="wireguard", keys=keys), expected_type="wireguard")
    duplicate = only_check(result, "wireguard_keys_unique")
    assert duplicate["passed"] is False
    assert "node-a, node-c" in duplicate["message"]
    assert "node-b" not in duplicate["message"]
    assert failed_names(result) == [("wireguard_keys_unique", None)]


def test_wireguard_missing_annotation():
    keys = [wireguard_key(), None, wireguard_key()]
    result = evaluate(snapshot(mode="wireguard", keys=keys), expected_type="wireguard")
    assert failed_names(result) == [("wireguard_public_key", "node-b")]


def test_wireguard_malformed_annotation():
    keys = [wireguard_key(), "not-a-key", wireguard_key()]
    result = evaluate(snapshot(mode="wireguard", keys=keys), expected_type="wireguard")
    assert (
        "'not-a-key'" in only_check(result, "wireguard_public_key", "node-b")["message"]
    )


def wireguard_agents(status_name, encrypt_name):
    agents = dict(
        (
            name,
            {
                "pod": pod("cilium-" + name, name),
                "skip_reason": "kwok simulates this node",
            },
        )
        for name in NAMES
    )
    agents["node-a"] = executed(sample(status_name), sample(encrypt_name))
    return agents


def test_wireguard_agent_matches_annotation():
    keys = [AKS_KEY, wireguard_key(), wireguard_key()]
    agents = wireguard_agents(
        "status-wireguard-aks-full.txt", "encrypt-wireguard-bare.txt"
    )
    result = evaluate(
        snapshot(mode="wireguard", keys=keys, agents=agents), expected_type="wireguard"
    )
    assert result["ok"] is True
    assert (
        only_check(result, "wireguard_peers", "node-a")["message"]
        == "cilium_wg0 has 2 peers."
    )
    assert only_check(result, "wireguard_agent_key", "node-a")["passed"] is True
    assert result["nodes"][0]["status"]["node_encryption"] == "Disabled"


def test_wireguard_agent_peer_count_wrong():
    keys = [EKS_KEY, wireguard_key(), wireguard_key()]
    agents = wireguard_agents(
        "status-wireguard-1.13.3-eks.txt", "encrypt-wireguard-rendered.txt"
    )
    result = evaluate(
        snapshot(mode="wireguard", keys=keys, agents=agents), expected_type="wireguard"
    )
    peers = only_check(result, "wireguard_peers", "node-a")
    assert peers["passed"] is False
    assert "1 peers, expected 2" in peers["message"]
    assert only_check(result, "wireguard_agent_key", "node-a")["passed"] is True


def test_wireguard_agent_key_differs():
    keys = [wireguard_key(), wireguard_key(), wireguard_key()]
    agents = wireguard_agents(
        "status-wireguard-aks-full.txt", "encrypt-wireguard-bare.txt"
    )
    result = evaluate(
        snapshot(mode="wireguard", keys=keys, agents=agents), expected_type="wireguard"
    )
    check = only_check(result, "wireguard_agent_key", "node-a")
    assert check["passed"] is False
    assert AKS_KEY in check["message"]
    assert keys[0] in check["message"]


def test_wireguard_key_from_encrypt_status():
    keys = [
        wireguard_key(),
        wireguard_key(),
        wireguard_key(),
        wireguard_key(),
        wireguard_key(),
        wireguard_key(),
    ]
    keys[0] = "ozRtQnV2nbHmn+FVKCC6fueHLMlaYB41/5qstTww1Vc="
    state = snapshot(mode="wireguard")
    state["nodes"] = [node("node-" + str(i)) for i in range(6)]
    state["ciliumnodes"] = [
        ciliumnode("node-" + str(i), key=key) for i, key in enumerate(keys)
    ]
    state["agents"] = {
        "node-0": executed(
            "Encryption:\tWireguard\n",
            sample("encrypt-wireguard-five-peers.txt"),
            "node-0",
        )
    }
    result = evaluate(state, expected_type="wireguard")
    assert only_check(result, "wireguard_peers", "node-0")["passed"] is True
    assert only_check(result, "wireguard_agent_key", "node-0")["passed"] is True


def test_wireguard_node_encryption_disabled():
    keys = [AKS_KEY, wireguard_key(), wireguard_key()]
    agents = wireguard_agents(
        "status-wireguard-aks-full.txt", "encrypt-wireguard-bare.txt"
    )
    state = snapshot(
        mode="wireguard",
        keys=keys,
        agents=agents,
        extra_config={"encrypt-node": "true"},
    )
    result = evaluate(state, expected_type="wireguard")
    check = only_check(result, "wireguard_node_encryption", "node-a")
    assert check["passed"] is False
    assert "encrypt-node" in check["message"]


def test_wireguard_node_encryption_enabled():
    keys = [
        "UzRSJUmRqsxl82xvFG0joBheaiqOnM3BCgpByYjVtCE=",
        wireguard_key(),
        wireguard_key(),
        wireguard_key(),
    ]
    state = snapshot(mode="wireguard", extra_config={"encrypt-node": "true"})
    state["nodes"] = [node(name) for name in NAMES + ["node-d"]]
    state["ciliumnodes"] = [
        ciliumnode(name, key=key) for name, key in zip(NAMES + ["node-d"], keys)
    ]
    state["agents"] = {
        "node-a": executed(
            sample("status-wireguard-node-encryption-enabled.txt"),
            sample("encrypt-wireguard-bare.txt"),
        )
    }
    result = evaluate(state, expected_type="wireguard")
    assert only_check(result, "wireguard_node_encryption", "node-a")["passed"] is True
    assert only_check(result, "wireguard_peers", "node-a")["passed"] is True


# Mode and missing objects -----------------------------------------------------------------


def test_expected_type_differs_from_config():
    keys = [wireguard_key() for name in NAMES]
    result = evaluate(snapshot(mode="wireguard", keys=keys), expected_type="ipsec")
    check = only_check(result, "encryption_mode")
    assert check["passed"] is False
    assert "wireguard encryption, expected ipsec" in check["message"]


def test_encryption_off_without_expected_type():
    state = snapshot()
    state["config"] = {"enable-ipsec": "false"}
    result = evaluate(state)
    assert result["mode"] == "disabled"
    assert only_check(result, "encryption_mode")["passed"] is False
    assert checks_named(result, "ipsec_spi_consistent") == []


def test_both_modes_on():
    state = snapshot()
    state["config"] = {"enable-ipsec": "true", "enable-wireguard": "true"}
    result = evaluate(state)
    assert result["mode"] == "conflict"
    assert (
        "both enable-ipsec and enable-wireguard"
        in only_check(result, "encryption_mode")["message"]
    )


def test_config_missing():
    state = snapshot()
    state["config"] = None
    result = evaluate(state)
    assert result["mode"] is None
    assert result["ok"] is False
    assert (
        "ConfigMap kube-system/cilium-config not found"
        in only_check(result, "cilium_config")["message"]
    )


def test_ciliumnode_api_missing():
    state = snapshot()
    state["ciliumnodes"] = None
    result = evaluate(state, expected_type="ipsec")
    assert only_check(result, "ciliumnode_api")["passed"] is False
    assert only_check(result, "ciliumnode", "node-a")["passed"] is False


def test_stale_ciliumnodes_ignored():
    state = snapshot()
    state["ciliumnodes"].append(ciliumnode("deleted-node", spi=1))
    result = evaluate(state, expected_type="ipsec")
    assert result["ok"] is True
    assert result["ignored_ciliumnodes"] == ["deleted-node"]
    assert [report["name"] for report in result["nodes"]] == NAMES


def test_node_without_agent_or_ciliumnode():
    state = snapshot()
    state["ciliumnodes"] = state["ciliumnodes"][:2]
    del state["agents"]["node-c"]
    result = evaluate(state, expected_type="ipsec")
    assert failed_names(result) == [
        ("agent_running", "node-c"),
        ("ciliumnode", "node-c"),
    ]
    report = result["nodes"][2]
    assert report["ciliumnode"] is False
    assert report["exec_status"].startswith("not exec'd")


# Summary ----------------------------------------------------------------------------------


def test_summary_lines():
    result = evaluate(snapshot(spis=(4, 3, 4)), expected_type="ipsec")
    lines = result["summary"]
    assert len(lines) == 4
    assert lines[0].startswith(
        "cluster: cilium-config mode ipsec (expected ipsec), Secret kube-system/cilium-ipsec-keys SPI 4"
    )
    assert "key rotation in progress" in lines[0]
    assert "1 of 4 checks failed: ipsec_spi_consistent" in lines[0]
    assert (
        lines[2]
        == "node-b: SPI 3, not exec'd: kwok simulates this node, 1 of 3 checks failed: ipsec_spi"
    )
    assert (
        lines[1]
        == "node-a: SPI 4, not exec'd: kwok simulates this node, all 3 checks passed"
    )


def test_evaluate_leaves_input_unchanged():
    state = snapshot(agents=ipsec_agents(["encrypt-ipsec-docs.txt"] * 3), kwok=False)
    before = copy.deepcopy(state)
    evaluate(state, expected_type="ipsec")
    assert state == before
