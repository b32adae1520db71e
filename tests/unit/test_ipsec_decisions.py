"""Unit tests for the decisions the IPsec key module makes about an existing Secret."""

import base64
import datetime

import pytest

from ansible_collections.kubecrypt.pod_encryption.plugins.module_utils._ipsec_secret import (
    CREATED_AT_ANNOTATION,
    PREVIOUS_SPI_ANNOTATION,
    Decision,
    Request,
    SecretError,
    build_secret,
    decide,
    parse_duration,
)

NOW = datetime.datetime(2026, 12, 4, 12, 0, 0, tzinfo=datetime.timezone.utc)
HEX40 = "0123456789abcdef0123456789abcdef01234567"
HEX72 = HEX40 + "89abcdef0123456789abcdef01234567"


def secret_with(line, created_at="2026-12-01T12:00:00Z", data_key="keys"):
    annotations = {CREATED_AT_ANNOTATION: created_at} if created_at else {}
    return {
        "metadata": {
            "name": "cilium-ipsec-keys",
            "namespace": "kube-system",
            "annotations": annotations,
            "resourceVersion": "42",
        },
        "data": {data_key: base64.b64encode(line.encode()).decode()},
    }


def test_missing_secret_creates_aes128_key():
    decision = decide(None, "keys", Request(), NOW)
    assert decision.action == Decision.CREATE
    assert decision.key.key_bits == 128
    assert decision.key.icv_bits == 128
    assert decision.key.per_tunnel is True


def test_missing_secret_honours_key_bits():
    decision = decide(None, "keys", Request(key_bits=256), NOW)
    assert decision.key.key_bits == 256
    assert len(decision.key.key_hex) == 72


def test_valid_secret_is_kept():
    decision = decide(
        secret_with("3+ rfc4106(gcm(aes)) {0} 128".format(HEX40)),
        "keys",
        Request(),
        NOW,
    )
    assert decision.action == Decision.KEEP
    assert decision.current.spi == 3


def test_existing_aes256_kept_when_key_bits_unset():
    decision = decide(
        secret_with("3+ rfc4106(gcm(aes)) {0} 128".format(HEX72)),
        "keys",
        Request(),
        NOW,
    )
    assert decision.action == Decision.KEEP
    assert decision.current.key_bits == 256


def test_rotate_moves_to_next_spi():
    secret = secret_with("3+ rfc4106(gcm(aes)) {0} 128".format(HEX40))
    decision = decide(secret, "keys", Request(rotate=True), NOW)
    assert decision.action == Decision.ROTATE
    assert decision.key.spi == 4
    assert decision.key.key_hex != HEX40
    assert len(decision.key.key_hex) == 40


def test_rotate_rolls_15_over_to_1():
    secret = secret_with("15+ rfc4106(gcm(aes)) {0} 128".format(HEX72))
    decision = decide(secret, "keys", Request(rotate=True), NOW)
    assert decision.key.spi == 1
    assert decision.key.key_bits == 256


def test_max_age_young_key_is_kept():
    secret = secret_with(
        "3+ rfc4106(gcm(aes)) {0} 128".format(HEX40), created_at="2026-12-01T12:00:00Z"
    )
    decision = decide(secret, "keys", Request(max_age="7d"), NOW)
    assert decision.action == Decision.KEEP


def test_max_age_old_key_is_rotated():
    secret = secret_with(
        "3+ rfc4106(gcm(aes)) {0} 128".format(HEX40), created_at="2026-09-01T12:00:00Z"
    )
    decision = decide(secret, "keys", Request(max_age="90d"), NOW)
    assert decision.action == Decision.ROTATE
    assert decision.key.spi == 4


def test_max_age_unknown_age_rotates_once():
    secret = secret_with("3+ rfc4106(gcm(aes)) {0} 128".format(HEX40), created_at=None)
    decision = decide(secret, "keys", Request(max_age="90d"), NOW)
    assert decision.action == Decision.ROTATE
    assert "not recorded" in decision.reason


def test_invalid_key_fails_and_names_defect():
    secret = secret_with("3 rfc4106(gcm(aes)) {0} 128".format(HEX40))
    with pytest.raises(SecretError) as caught:
        decide(secret, "keys", Request(), NOW)
    message = str(caught.value)
    assert "kube-system/cilium-ipsec-keys" in message
    assert "has no '+'" in message
    assert "Nothing was changed" in message
    assert "regenerate to full_idempotence" in message


def test_invalid_key_replaced_when_allowed():
    secret = secret_with("3 rfc4106(gcm(aes)) {0} 128".format(HEX40))
    decision = decide(secret, "keys", Request(regenerate="full_idempotence"), NOW)
    assert decision.action == Decision.REPLACE
    assert decision.key.spi == 4


def test_unreadable_spi_replaced_with_spi_1():
    secret = secret_with("garbage")
    decision = decide(secret, "keys", Request(regenerate="full_idempotence"), NOW)
    assert decision.key.spi == 1


def test_missing_data_key_names_present_keys():
    secret = secret_with("3+ rfc4106(gcm(aes)) {0} 128".format(HEX40), data_key="key")
    with pytest.raises(
        SecretError, match=r"has no data key 'keys' \(data keys present: key\)"
    ):
        decide(secret, "keys", Request(), NOW)


def test_empty_secret_data_fails():
    secret = secret_with("")
    with pytest.raises(SecretError, match="The key is empty"):
        decide(secret, "keys", Request(), NOW)


def test_size_mismatch_fails_by_default():
    secret = secret_with("3+ rfc4106(gcm(aes)) {0} 128".format(HEX40))
    with pytest.raises(SecretError, match="is AES-128 but key_bits is 256"):
        decide(secret, "keys", Request(key_bits=256), NOW)


def test_size_mismatch_kept_with_regenerate_never():
    secret = secret_with("3+ rfc4106(gcm(aes)) {0} 128".format(HEX40))
    decision = decide(secret, "keys", Request(key_bits=256, regenerate="never"), NOW)
    assert decision.action == Decision.KEEP


def test_size_mismatch_replaced_with_full_idempotence():
    secret = secret_with("3+ rfc4106(gcm(aes)) {0} 128".format(HEX40))
    decision = decide(
        secret, "keys", Request(key_bits=256, regenerate="full_idempotence"), NOW
    )
    assert decision.action == Decision.REPLACE
    assert decision.key.key_bits == 256
    assert decision.key.spi == 4


def test_icv_mismatch_fails_by_default():
    secret = secret_with("3+ rfc4106(gcm(aes)) {0} 96".format(HEX40))
    with pytest.raises(SecretError, match="has a 96-bit ICV but icv_bits is 128"):
        decide(secret, "keys", Request(icv_bits=128), NOW)


def test_regenerate_always_replaces_valid_key():
    secret = secret_with("3+ rfc4106(gcm(aes)) {0} 128".format(HEX40))
    decision = decide(secret, "keys", Request(regenerate="always"), NOW)
    assert decision.action == Decision.REPLACE
    assert decision.key.spi == 4


def test_absent_deletes_existing():
    secret = secret_with("3+ rfc4106(gcm(aes)) {0} 128".format(HEX40))
    assert (
        decide(secret, "keys", Request(state="absent"), NOW).action == Decision.DELETE
    )
    assert decide(None, "keys", Request(state="absent"), NOW).action == Decision.KEEP


def test_request_rejects_icv_256():
    with pytest.raises(SecretError, match="ICV length 256 is not supported"):
        Request(icv_bits=256)


@pytest.mark.parametrize(
    "text, seconds",
    [("90d", 7776000), ("12h", 43200), ("1w2d", 777600), ("30m", 1800), ("45s", 45)],
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "90", "d", "1y", "0d", "-5d", "5 d"])
def test_parse_duration_rejects(text):
    with pytest.raises(SecretError, match="max_age"):
        parse_duration(text)


def test_build_secret_records_time_and_previous_spi():
    existing = secret_with("3+ rfc4106(gcm(aes)) {0} 128".format(HEX40))
    decision = decide(existing, "keys", Request(rotate=True), NOW)
    body = build_secret(
        "cilium-ipsec-keys", "kube-system", "keys", decision.key, NOW, existing
    )
    annotations = body["metadata"]["annotations"]
    assert annotations[CREATED_AT_ANNOTATION] == "2026-12-04T12:00:00Z"
    assert annotations[PREVIOUS_SPI_ANNOTATION] == "3"
    assert body["metadata"]["resourceVersion"] == "42"
    line = base64.b64decode(body["data"]["keys"]).decode()
    assert line == decision.key.line()
    assert line.startswith("4+ rfc4106(gcm(aes)) ")


def test_rotate_from_spi_matching_rotates():
    secret = secret_with("3+ rfc4106(gcm(aes)) {0} 128".format(HEX40))
    decision = decide(secret, "keys", Request(rotate=True, rotate_from_spi=3), NOW)
    assert decision.action == Decision.ROTATE
    assert decision.key.spi == 4


def test_rotate_from_spi_superseded_keeps():
    secret = secret_with("4+ rfc4106(gcm(aes)) {0} 128".format(HEX40))
    decision = decide(secret, "keys", Request(rotate=True, rotate_from_spi=3), NOW)
    assert decision.action == Decision.KEEP
    assert decision.superseded is True
    assert decision.reason == "the key is already at SPI 4, not 3: another writer rotated it"


@pytest.mark.parametrize(
    "name, namespace, data_key, message",
    [
        ("s", "", "keys", "namespace '' is empty"),
        ("", "kube-system", "keys", "name '' is empty"),
        ("s", "kube-system", "", "data_key '' is empty"),
    ],
)
def test_check_location_rejects_empty(name, namespace, data_key, message):
    from ansible_collections.kubecrypt.pod_encryption.plugins.module_utils._ipsec_secret import (
        check_location,
    )

    with pytest.raises(SecretError, match=message):
        check_location(name, namespace, data_key)
