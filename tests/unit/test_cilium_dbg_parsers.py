"""Unit tests for the parsers of cilium-dbg status and cilium-dbg encrypt status output.

No Cilium agent can run here, so the parsers are tested on real agent output quoted from
Cilium's documentation, its tests and user reports. fixtures/cilium_dbg/SOURCES.md gives the
source of each file. Two files are rendered from the agent's own format strings, and
SOURCES.md marks them as rendered.
"""

import os

import pytest

from ansible_collections.kubecrypt.pod_encryption.plugins.module_utils._cilium_dbg import (
    OutputFormatError,
    cli_for_version,
    parse_encrypt_status,
    parse_status,
    parse_version,
    version_from_image,
)

FIXTURES = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "fixtures", "cilium_dbg"
)


def sample(name):
    with open(os.path.join(FIXTURES, name)) as handle:
        return handle.read()


# cilium-dbg encrypt status, IPsec ---------------------------------------------------------


def test_encrypt_ipsec_docs_sample():
    parsed = parse_encrypt_status(sample("encrypt-ipsec-docs.txt"))
    ipsec = parsed["ipsec"]
    assert parsed["mode"] == "ipsec"
    assert parsed["message"] is None
    assert ipsec["decryption_interfaces"] == ["eth0", "eth1", "eth2"]
    assert ipsec["keys_in_use"] == 4
    assert ipsec["max_seq_number"] == "0x1e3/0xffffffff"
    assert ipsec["max_seq_used"] == 0x1E3
    assert ipsec["max_seq_limit"] == 0xFFFFFFFF
    assert ipsec["errors"] == 0
    assert ipsec["xfrm_errors"] == {}
    assert parsed["wireguard"] == []


def test_encrypt_ipsec_one_key():
    ipsec = parse_encrypt_status(sample("encrypt-ipsec-one-key.txt"))["ipsec"]
    assert ipsec["keys_in_use"] == 1
    assert ipsec["max_seq_used"] == 0x6E


def test_encrypt_ipsec_padded_empty_interfaces():
    parsed = parse_encrypt_status(sample("encrypt-ipsec-1.14.5-no-interfaces.txt"))
    ipsec = parsed["ipsec"]
    assert parsed["mode"] == "ipsec"
    assert ipsec["decryption_interfaces"] == []
    assert ipsec["keys_in_use"] == 1
    assert ipsec["max_seq_number"] == "N/A"
    assert ipsec["max_seq_used"] is None
    assert ipsec["max_seq_limit"] is None
    assert ipsec["errors"] == 0


def test_encrypt_ipsec_single_interface():
    ipsec = parse_encrypt_status(sample("encrypt-ipsec-1.15-rc1.txt"))["ipsec"]
    assert ipsec["decryption_interfaces"] == ["eth0"]
    assert ipsec["max_seq_used"] == 0xA


def test_encrypt_ipsec_ignores_kubectl_notice():
    parsed = parse_encrypt_status(sample("encrypt-ipsec-kpr-no-interfaces.txt"))
    ipsec = parsed["ipsec"]
    assert parsed["mode"] == "ipsec"
    assert ipsec["decryption_interfaces"] == []
    assert ipsec["keys_in_use"] == 3
    assert ipsec["max_seq_used"] == 0x143955


def test_encrypt_ipsec_one_error_counter():
    ipsec = parse_encrypt_status(sample("encrypt-ipsec-errors-one-counter.txt"))[
        "ipsec"
    ]
    assert ipsec["keys_in_use"] == 2
    assert ipsec["errors"] == 2
    assert ipsec["xfrm_errors"] == {"XfrmInNoState": 2}


def test_encrypt_ipsec_two_error_counters():
    ipsec = parse_encrypt_status(sample("encrypt-ipsec-errors-two-counters.txt"))[
        "ipsec"
    ]
    assert ipsec["errors"] == 3
    assert ipsec["xfrm_errors"] == {"XfrmInNoState": 2, "XfrmInHdrError": 1}


def test_encrypt_ipsec_tab_indented_counters():
    ipsec = parse_encrypt_status(sample("encrypt-ipsec-errors-rendered.txt"))["ipsec"]
    assert ipsec["decryption_interfaces"] == ["eth0", "eth1"]
    assert ipsec["keys_in_use"] == 8
    assert ipsec["errors"] == 608140
    assert ipsec["xfrm_errors"]["XfrmInStateProtoError"] == 141222
    assert ipsec["xfrm_errors"]["XfrmInNoStates"] == 225479
    assert sum(ipsec["xfrm_errors"].values()) == ipsec["errors"]
    assert len(ipsec["xfrm_errors"]) == 6


def test_encrypt_ipsec_64_bit_sequence_limit():
    ipsec = parse_encrypt_status(sample("encrypt-ipsec-errors-rendered.txt"))["ipsec"]
    assert ipsec["max_seq_used"] == 0x1410
    assert ipsec["max_seq_limit"] == 0xFFFFFFFFFFFFFFFF


def test_encrypt_ipsec_counters_at_line_start():
    text = "Encryption: IPsec\nKeys in use: 2\nErrors: 5\nXfrmInNoStates : 5\n"
    ipsec = parse_encrypt_status(text)["ipsec"]
    assert ipsec["xfrm_errors"] == {"XfrmInNoStates": 5}


# cilium-dbg encrypt status, other modes ----------------------------------------------------


def test_encrypt_disabled():
    parsed = parse_encrypt_status(sample("encrypt-disabled.txt"))
    assert parsed["mode"] == "disabled"
    assert parsed["ipsec"] is None
    assert parsed["wireguard"] == []


def test_encrypt_wireguard_five_peers():
    parsed = parse_encrypt_status(sample("encrypt-wireguard-five-peers.txt"))
    assert parsed["mode"] == "wireguard"
    assert parsed["ipsec"] is None
    assert parsed["wireguard"] == [
        {
            "name": "cilium_wg0",
            "public_key": "ozRtQnV2nbHmn+FVKCC6fueHLMlaYB41/5qstTww1Vc=",
            "peers": 5,
        }
    ]


def test_encrypt_wireguard_padded_mode():
    parsed = parse_encrypt_status(sample("encrypt-wireguard-rendered.txt"))
    assert parsed["mode"] == "wireguard"
    assert (
        parsed["wireguard"][0]["public_key"]
        == "HMfZu016CF/0EYMl0tACI3qeaT2TePs831EfJZmzdQw="
    )
    assert parsed["wireguard"][0]["peers"] == 1


def test_encrypt_wireguard_without_devices():
    parsed = parse_encrypt_status(sample("encrypt-wireguard-bare.txt"))
    assert parsed["mode"] == "wireguard"
    assert parsed["wireguard"] == []


def test_encrypt_unreachable_agent_message():
    parsed = parse_encrypt_status("Msg: agent unreachable\nEncryption: \n")
    assert parsed["mode"] is None
    assert parsed["message"] == "agent unreachable"


# cilium-dbg status -------------------------------------------------------------------------


def test_status_disabled_in_full_output():
    parsed = parse_status(sample("status-disabled-1.18.4.txt"))
    assert parsed["mode"] == "disabled"
    assert parsed["interfaces"] == []
    assert parsed["message"] is None
    assert parsed["node_encryption"] is None


def test_status_wireguard_in_shortened_output():
    parsed = parse_status(sample("status-wireguard-aks-full.txt"))
    assert parsed["mode"] == "wireguard"
    assert parsed["node_encryption"] == "Disabled"
    assert parsed["interfaces"] == [
        {
            "name": "cilium_wg0",
            "public_key": "9HDBqS5T5+aGrPZW6QYk3BN7GZoa4k/t27IQkY1Ogw8=",
            "port": 51871,
            "peers": 2,
        }
    ]


def test_status_node_encryption_enabled():
    parsed = parse_status(sample("status-wireguard-node-encryption-enabled.txt"))
    assert parsed["node_encryption"] == "Enabled"
    assert parsed["interfaces"][0]["peers"] == 3


def test_status_without_node_encryption_field():
    parsed = parse_status(sample("status-wireguard-1.13.3-eks.txt"))
    assert parsed["mode"] == "wireguard"
    assert parsed["node_encryption"] is None
    assert (
        parsed["interfaces"][0]["public_key"]
        == "HMfZu016CF/0EYMl0tACI3qeaT2TePs831EfJZmzdQw="
    )
    assert parsed["interfaces"][0]["peers"] == 1


def test_status_docs_placeholder_key():
    parsed = parse_status(sample("status-wireguard-docs.txt"))
    assert parsed["interfaces"][0]["public_key"] == "<..>"
    assert parsed["interfaces"][0]["port"] == 51871
    assert parsed["interfaces"][0]["peers"] == 2


@pytest.mark.parametrize(
    "name, mode",
    [
        ("status-disabled-tab.txt", "disabled"),
        ("status-ipsec-tab.txt", "ipsec"),
        ("status-wireguard-tab.txt", "wireguard"),
    ],
)
def test_status_tab_separated_forms(name, mode):
    assert parse_status(sample(name))["mode"] == mode


def test_status_tab_separated_wireguard_device():
    parsed = parse_status(sample("status-wireguard-tab.txt"))
    assert (
        parsed["interfaces"][0]["public_key"]
        == "GsIGt1Juo6p8gR93driyMD5FwFu2uOBBYGVsZtfQxho="
    )
    assert parsed["interfaces"][0]["peers"] == 1


def test_status_wireguard_without_devices():
    parsed = parse_status("Encryption:   Wireguard   [NodeEncryption: OptedOut, ]")
    assert parsed["node_encryption"] == "OptedOut"
    assert parsed["interfaces"] == []


def test_status_error_message_in_place_of_details():
    parsed = parse_status("Encryption:   Wireguard   failed to fetch WireGuard status")
    assert parsed["mode"] == "wireguard"
    assert parsed["message"] == "failed to fetch WireGuard status"
    assert parsed["interfaces"] == []


# Malformed input --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "",
        "OK\n",
        'error: unable to upgrade connection: container not found ("cilium-agent")\n',
    ],
)
def test_status_without_encryption_line(text):
    with pytest.raises(OutputFormatError, match="no 'Encryption:' line"):
        parse_status(text)


def test_status_unknown_mode():
    with pytest.raises(OutputFormatError, match="'Rot13'"):
        parse_status("Encryption:   Rot13")


@pytest.mark.parametrize(
    "details",
    [
        "[cilium_wg0 (Pubkey: abc=, Port: many, Peers: 1)]",
        "[cilium_wg0 (Pubkey: abc=, Port: 51871, Peers: -1)]",
        "[cilium_wg0 Pubkey abc=]",
    ],
)
def test_status_malformed_wireguard_details(details):
    with pytest.raises(OutputFormatError):
        parse_status("Encryption:   Wireguard   " + details)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Keys in use: 4\nErrors: 0\n",
        "error: pod cilium-x does not have a host assigned\n",
    ],
)
def test_encrypt_without_encryption_line(text):
    with pytest.raises(OutputFormatError, match="no 'Encryption:' line"):
        parse_encrypt_status(text)


def test_encrypt_non_numeric_key_count():
    with pytest.raises(OutputFormatError, match="'Keys in use' on line 2 is 'four'"):
        parse_encrypt_status("Encryption: IPsec\nKeys in use: four\n")


def test_encrypt_malformed_sequence_number():
    with pytest.raises(OutputFormatError, match="Max Seq. Number"):
        parse_encrypt_status("Encryption: IPsec\nMax Seq. Number: 0xzz/0xffffffff\n")


def test_encrypt_malformed_counter():
    with pytest.raises(OutputFormatError, match="line 3"):
        parse_encrypt_status("Encryption: IPsec\nErrors: 1\n\tXfrmInNoStates: one\n")


def test_encrypt_indented_line_out_of_place():
    with pytest.raises(OutputFormatError, match="follows neither"):
        parse_encrypt_status("Encryption: IPsec\n\tPublic key: abc=\n")


def test_encrypt_unknown_mode():
    with pytest.raises(OutputFormatError, match="'Plaintext'"):
        parse_encrypt_status("Encryption: Plaintext\n")


# Versions and CLI names -------------------------------------------------------------------


@pytest.mark.parametrize(
    "version, cli",
    [
        ((1, 13, 3), "cilium"),
        ((1, 14), "cilium"),
        ((1, 15, 0), "cilium-dbg"),
        ((1, 20), "cilium-dbg"),
        (None, "cilium-dbg"),
    ],
)
def test_cli_for_version(version, cli):
    assert cli_for_version(version) == cli


@pytest.mark.parametrize(
    "image, version",
    [
        (
            "quay.io/cilium/cilium:v1.13.3@sha256:77176464a1e11ea7e89e984ac7db365e7af39851507e94f137dcf56c87746314",
            (1, 13, 3),
        ),
        ("quay.io/cilium/cilium:v1.16.5", (1, 16, 5)),
        ("registry.local:5000/cilium/cilium:1.17.0-rc.1", (1, 17, 0)),
        ("registry.local:5000/cilium/cilium", None),
        ("quay.io/cilium/cilium:latest", None),
        (
            "quay.io/cilium/cilium@sha256:77176464a1e11ea7e89e984ac7db365e7af39851507e94f137dcf56c87746314",
            None,
        ),
        (None, None),
    ],
)
def test_version_from_image(image, version):
    assert version_from_image(image) == version


@pytest.mark.parametrize(
    "text, version",
    [("1.14", (1, 14)), ("v1.16.5", (1, 16, 5)), ("one", None), ("", None)],
)
def test_parse_version(text, version):
    assert parse_version(text) == version
