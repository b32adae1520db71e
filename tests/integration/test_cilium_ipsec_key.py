"""The cilium_ipsec_key module against a real API server: check, apply, check again, apply again."""

import base64
import json
import re
import uuid

import pytest

from harness import run_module

MODULE = "kubecrypt.pod_encryption.cilium_ipsec_key"
KEY_LINE = re.compile(r"^([1-9]|1[0-5])\+ rfc4106\(gcm\(aes\)\) [0-9a-f]{40} 128$")
HEX40 = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def namespace(kubectl):
    name = "ipsec-" + uuid.uuid4().hex[:8]
    kubectl("create", "namespace", name)
    yield name
    # Wait for the deletion, so that later tests that compare cluster snapshots see none of it.
    kubectl("delete", "namespace", name, "--wait=true", "--timeout=120s")


def read_line(kubectl, namespace, name="cilium-ipsec-keys", data_key="keys"):
    secret = kubectl("get", "secret", name, "-n", namespace, "-o", "json")
    return base64.b64decode(secret["data"][data_key]).decode()


def resource_version(kubectl, namespace, name="cilium-ipsec-keys"):
    found = kubectl("get", "secret", name, "-n", namespace, "-o", "json", check=False)
    if isinstance(found, dict):
        return found["metadata"]["resourceVersion"]
    return None


def create_secret(kubectl, namespace, line, data_key="keys"):
    manifest = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "cilium-ipsec-keys", "namespace": namespace},
        "data": {data_key: base64.b64encode(line.encode()).decode()},
    }
    kubectl("create", "-f", "-", stdin=json.dumps(manifest))


def test_four_steps_create(kubeconfig, kubectl, namespace):
    arguments = {"namespace": namespace}

    checked = run_module(MODULE, arguments, kubeconfig, check=True, diff=True)[0]
    assert checked["changed"] is True
    assert checked["operation"] == "create"
    assert resource_version(kubectl, namespace) is None

    applied = run_module(MODULE, arguments, kubeconfig)[0]
    assert applied["changed"] is True
    assert applied["created"] is True
    line = read_line(kubectl, namespace)
    assert KEY_LINE.match(line)
    assert applied["spi"] == int(line.split("+")[0])
    version = resource_version(kubectl, namespace)

    checked_again = run_module(MODULE, arguments, kubeconfig, check=True)[0]
    assert checked_again["changed"] is False

    applied_again = run_module(MODULE, arguments, kubeconfig)[0]
    assert applied_again["changed"] is False
    assert applied_again["operation"] == "keep"
    assert resource_version(kubectl, namespace) == version
    assert read_line(kubectl, namespace) == line


def test_rotation_changes_spi_and_key(kubeconfig, kubectl, namespace):
    create_secret(kubectl, namespace, "3+ rfc4106(gcm(aes)) {0} 128".format(HEX40))

    checked = run_module(MODULE, {"namespace": namespace, "rotate": True}, kubeconfig, check=True)[0]
    assert checked["changed"] is True
    assert read_line(kubectl, namespace).startswith("3+ ")

    rotated = run_module(MODULE, {"namespace": namespace, "rotate": True}, kubeconfig)[0]
    line = read_line(kubectl, namespace)
    assert rotated["rotated"] is True
    assert rotated["previous_spi"] == 3
    assert rotated["spi"] == 4
    assert line.startswith("4+ rfc4106(gcm(aes)) ")
    assert HEX40 not in line
    assert len(line.split(" ")[2]) == 40
    assert KEY_LINE.match(line)


def test_rotation_from_15_wraps_to_1(kubeconfig, kubectl, namespace):
    create_secret(kubectl, namespace, "15+ rfc4106(gcm(aes)) {0} 128".format(HEX40))
    rotated = run_module(MODULE, {"namespace": namespace, "rotate": True}, kubeconfig)[0]
    assert rotated["spi"] == 1
    assert read_line(kubectl, namespace).startswith("1+ ")


def test_max_age_rotates_once(kubeconfig, kubectl, namespace):
    create_secret(kubectl, namespace, "3+ rfc4106(gcm(aes)) {0} 128".format(HEX40))
    first = run_module(MODULE, {"namespace": namespace, "max_age": "30d"}, kubeconfig)[0]
    assert first["rotated"] is True
    assert "not recorded" in first["reason"]
    second = run_module(MODULE, {"namespace": namespace, "max_age": "30d"}, kubeconfig)[0]
    assert second["changed"] is False
    assert second["spi"] == 4


def test_invalid_secret_fails_and_changes_nothing(kubeconfig, kubectl, namespace):
    create_secret(kubectl, namespace, "3 rfc4106(gcm(aes)) {0} 128".format(HEX40))
    version = resource_version(kubectl, namespace)
    result = run_module(MODULE, {"namespace": namespace}, kubeconfig)[0]
    assert result.get("failed") is True
    assert "has no '+'" in result["msg"]
    assert "Nothing was changed" in result["msg"]
    assert HEX40 not in result["msg"]
    assert resource_version(kubectl, namespace) == version


def test_invalid_secret_replaced_on_request(kubeconfig, kubectl, namespace):
    create_secret(kubectl, namespace, "3 rfc4106(gcm(aes)) {0} 128".format(HEX40))
    result, _output = run_module(
        MODULE, {"namespace": namespace, "regenerate": "full_idempotence"}, kubeconfig
    )
    assert result["changed"] is True
    assert result["operation"] == "replace"
    assert any("Restart every Cilium agent" in w for w in result.get("warnings", []))
    assert read_line(kubectl, namespace).startswith("4+ ")


def test_diff_and_result_never_contain_key(kubeconfig, kubectl, namespace):
    create_secret(kubectl, namespace, "3+ rfc4106(gcm(aes)) {0} 128".format(HEX40))
    result, process = run_module(
        MODULE, {"namespace": namespace, "rotate": True}, kubeconfig, diff=True, verbosity=3
    )
    new_hex = read_line(kubectl, namespace).split(" ")[2]
    output = process.stdout + process.stderr
    for secret in (HEX40, new_hex, base64.b64encode(new_hex.encode()).decode()):
        assert secret not in output
    assert result["diff"]["before"]["spi"] == 3
    assert result["diff"]["after"]["spi"] == 4
    assert result["diff"]["after"]["fingerprint"].startswith("SHA256:")
    assert "key_line" not in result


def test_return_content_returns_line(kubeconfig, kubectl, namespace):
    result = run_module(MODULE, {"namespace": namespace, "return_content": True}, kubeconfig)[0]
    assert result["key_line"] == read_line(kubectl, namespace)


def test_absent_deletes_secret(kubeconfig, kubectl, namespace):
    run_module(MODULE, {"namespace": namespace}, kubeconfig)
    checked = run_module(MODULE, {"namespace": namespace, "state": "absent"}, kubeconfig, check=True)[0]
    assert checked["changed"] is True
    assert resource_version(kubectl, namespace) is not None
    removed = run_module(MODULE, {"namespace": namespace, "state": "absent"}, kubeconfig)[0]
    assert removed["changed"] is True
    assert resource_version(kubectl, namespace) is None
    again = run_module(MODULE, {"namespace": namespace, "state": "absent"}, kubeconfig)[0]
    assert again["changed"] is False


def test_unreachable_api_gives_one_message(tmp_path):
    kubeconfig = tmp_path / "nowhere.kubeconfig"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:9"}}],
                "users": [{"name": "u", "user": {"token": "x"}}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "c",
            }
        )
    )
    result = run_module(MODULE, {}, str(kubeconfig))[0]
    assert result.get("failed") is True
    assert "cannot be reached" in result["msg"]
    assert "Traceback" not in result["msg"]
