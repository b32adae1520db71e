"""Unit tests for the checks that run before an install or a key rotation."""

import pytest

from ansible_collections.kubecrypt.pod_encryption.plugins.module_utils._preflight import (
    check_agents_settled,
    check_ipsec_values,
    check_tunnel_node_encryption,
    check_wireguard_kernels,
    go_duration_seconds,
    kernel_version,
    nodes_not_on,
)


def node(name, kernel):
    return {
        "metadata": {"name": name},
        "status": {"nodeInfo": {"kernelVersion": kernel}},
    }


def daemonset(desired=3, updated=3, ready=3, generation=2, observed=2, unavailable=0):
    return {
        "metadata": {"generation": generation},
        "status": {
            "desiredNumberScheduled": desired,
            "updatedNumberScheduled": updated,
            "numberReady": ready,
            "observedGeneration": observed,
            "numberUnavailable": unavailable,
        },
    }


def agent_pod(node_name, image):
    return {
        "spec": {
            "nodeName": node_name,
            "containers": [{"name": "cilium-agent", "image": image}],
        }
    }


@pytest.mark.parametrize(
    "text, expected",
    [
        ("5.15.0-1034-aws", (5, 15)),
        ("6.8.0-45-generic", (6, 8)),
        ("4.18.0-553.el8_10.x86_64", (4, 18)),
        ("5.6", (5, 6)),
        ("", None),
        ("linux", None),
    ],
)
def test_kernel_version(text, expected):
    assert kernel_version(text) == expected


def test_wireguard_kernels_all_new_enough():
    assert (
        check_wireguard_kernels([node("a", "5.6.0"), node("b", "6.8.0-45-generic")])
        == []
    )


def test_wireguard_kernels_lists_each_old_node():
    errors = check_wireguard_kernels(
        [
            node("a", "6.8.0"),
            node("b", "5.4.0-1103-aws"),
            node("c", "4.18.0-553.el8"),
            node("d", ""),
        ]
    )
    assert errors == [
        "WireGuard needs Linux 5.6 or later on every node, but these nodes run older kernels: "
        "b (kernel 5.4.0-1103-aws), c (kernel 4.18.0-553.el8), d (kernel version '' "
        "unreadable). Upgrade their kernels or use cilium_encryption_type: ipsec."
    ]


def test_ipsec_rejects_cni_chaining():
    assert check_ipsec_values({"cni": {"chainingMode": "aws-cni"}}) == [
        "IPsec encryption does not work with CNI chaining, but cni.chainingMode is 'aws-cni'. "
        "Use cilium_encryption_type: wireguard or remove cni.chainingMode."
    ]


def test_ipsec_accepts_chaining_none():
    assert check_ipsec_values({"cni": {"chainingMode": "none"}}) == []


def test_ipsec_l7_proxy_needs_transparent_mode():
    errors = check_ipsec_values({"dnsProxy": {"enableTransparentMode": False}})
    assert errors == [
        "IPsec with the L7 proxy needs DNS proxy transparent mode, but "
        "dnsProxy.enableTransparentMode is false and l7Proxy is on; the agent would not start. "
        "Set dnsProxy.enableTransparentMode: true or l7Proxy: false."
    ]


def test_ipsec_l7_proxy_off_allows_no_transparent_mode():
    values = {"l7Proxy": False, "dnsProxy": {"enableTransparentMode": False}}
    assert check_ipsec_values(values) == []


def test_node_encryption_in_tunnel_mode_warns():
    warnings = check_tunnel_node_encryption({"encryption": {"nodeEncryption": True}})
    assert len(warnings) == 1
    assert "tunnel routing" in warnings[0]


def test_node_encryption_native_routing_no_warning():
    values = {"encryption": {"nodeEncryption": True}, "routingMode": "native"}
    assert check_tunnel_node_encryption(values) == []


def test_settled_agents_pass():
    pods = [
        agent_pod("a", "quay.io/cilium/cilium:v1.20.0"),
        agent_pod("b", "quay.io/cilium/cilium:v1.20.0"),
    ]
    assert check_agents_settled(daemonset(desired=2, updated=2, ready=2), pods) == []


def test_mid_rollout_rejected():
    errors = check_agents_settled(daemonset(updated=1), [])
    assert errors == [
        "The Cilium agent DaemonSet is mid-rollout (1 of 3 agents updated, 3 ready). A key "
        "rotation during an upgrade can break traffic: wait until the rollout finishes, then "
        "rotate."
    ]


def test_unobserved_generation_counts_as_rollout():
    assert len(check_agents_settled(daemonset(generation=3, observed=2), [])) == 1


def test_mixed_agent_versions_rejected():
    pods = [agent_pod("a", "cilium:v1.19.6"), agent_pod("b", "cilium:v1.20.0")]
    errors = check_agents_settled(daemonset(desired=2, updated=2, ready=2), pods)
    assert errors == [
        "Cilium agents run different versions (cilium:v1.19.6, cilium:v1.20.0). Rotate only "
        "when every agent runs the same version."
    ]


def test_missing_daemonset_rejected():
    assert "DaemonSet was not found" in check_agents_settled(None, [])[0]


@pytest.mark.parametrize(
    "text, seconds",
    [("5m", 300), ("5m0s", 300), ("1h30m", 5400), ("90s", 90), ("", 300), (None, 300)],
)
def test_go_duration_seconds(text, seconds):
    assert go_duration_seconds(text) == seconds


@pytest.mark.parametrize("text", ["5", "five", "5m x", "m5"])
def test_go_duration_rejects(text):
    with pytest.raises(ValueError, match="is not a Go duration"):
        go_duration_seconds(text)


def test_nodes_not_on_lists_lagging_and_missing():
    cilium_nodes = [
        {"metadata": {"name": "a"}, "spec": {"encryption": {"key": 4}}},
        {"metadata": {"name": "b"}, "spec": {"encryption": {"key": 3}}},
    ]
    assert nodes_not_on(4, ["a", "b", "c"], cilium_nodes) == [
        "b (SPI 3)",
        "c (SPI missing)",
    ]
