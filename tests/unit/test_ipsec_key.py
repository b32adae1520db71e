"""Unit tests for IPsec key lines: parsing, formatting, generation and SPI succession."""

import re

import pytest

from ansible_collections.kubecrypt.pod_encryption.plugins.module_utils._ipsec_key import (
    KeyLineError,
    generate_key,
    next_spi,
    parse_key_line,
    rotate_key,
)

KEY_LINE_PATTERN = re.compile(
    r"^([1-9]|1[0-5])\+ rfc4106\(gcm\(aes\)\) [0-9a-f]{40} 128$"
)
HEX40 = "0123456789abcdef0123456789abcdef01234567"
HEX56 = HEX40 + "89abcdef01234567"
HEX72 = HEX40 + "89abcdef0123456789abcdef01234567"


@pytest.mark.parametrize(
    "spi, expected",
    [(1, 2), (3, 4), (14, 15), (15, 1)],
)
def test_next_spi_succession(spi, expected):
    assert next_spi(spi) == expected


def test_next_spi_cycles_through_all_fifteen():
    seen = []
    spi = 1
    for step in range(15):
        seen.append(spi)
        spi = next_spi(spi)
    assert sorted(seen) == list(range(1, 16))
    assert spi == 1


@pytest.mark.parametrize("spi", [0, 16, -1, True, "3"])
def test_next_spi_rejects_invalid(spi):
    with pytest.raises(KeyLineError):
        next_spi(spi)


def test_generated_key_matches_cilium_format():
    key = generate_key(spi=3)
    assert KEY_LINE_PATTERN.match(key.line())
    assert key.line().startswith("3+ ")
    assert not key.line().endswith("\n")


@pytest.mark.parametrize("key_bits, hex_chars", [(128, 40), (192, 56), (256, 72)])
def test_generated_key_length_per_size(key_bits, hex_chars):
    key = generate_key(spi=1, key_bits=key_bits)
    assert len(key.key_hex) == hex_chars
    assert key.key_bits == key_bits


def test_generated_keys_differ():
    lines = {generate_key(spi=1).key_hex for attempt in range(50)}
    assert len(lines) == 50


def test_generate_rejects_icv_256():
    with pytest.raises(KeyLineError, match="ICV length 256 is not supported"):
        generate_key(spi=1, icv_bits=256)


def test_generate_rejects_key_bits_512():
    with pytest.raises(KeyLineError, match="Key size 512 is not supported"):
        generate_key(spi=1, key_bits=512)


def test_rotation_keeps_size_icv_and_plus():
    current = parse_key_line("15+ rfc4106(gcm(aes)) {0} 96".format(HEX72))
    rotated = rotate_key(current)
    assert rotated.spi == 1
    assert rotated.key_bits == 256
    assert rotated.icv_bits == 96
    assert rotated.per_tunnel is True
    assert rotated.key_hex != current.key_hex


def test_parse_round_trip():
    key = generate_key(spi=7, key_bits=256)
    parsed = parse_key_line(key.line())
    assert parsed.spi == 7
    assert parsed.key_hex == key.key_hex
    assert parsed.icv_bits == 128
    assert parsed.line() == key.line()


def test_parse_accepts_single_trailing_newline():
    parsed = parse_key_line("3+ rfc4106(gcm(aes)) {0} 128\n".format(HEX40))
    assert parsed.spi == 3


def test_parse_accepts_uppercase_and_0x_prefix():
    parsed = parse_key_line("3+ rfc4106(gcm(aes)) 0x{0} 128".format(HEX40.upper()))
    assert parsed.key_hex == HEX40
    assert parsed.line() == "3+ rfc4106(gcm(aes)) {0} 128".format(HEX40)


@pytest.mark.parametrize("hex_value, bits", [(HEX40, 128), (HEX56, 192), (HEX72, 256)])
def test_parse_key_sizes(hex_value, bits):
    assert (
        parse_key_line("1+ rfc4106(gcm(aes)) {0} 128".format(hex_value)).key_bits
        == bits
    )


BAD_LINES = [
    ("", "The key is empty"),
    ("\n", "The key is empty"),
    ("0+ rfc4106(gcm(aes)) {0} 128".format(HEX40), "SPI 0 is out of range"),
    ("16+ rfc4106(gcm(aes)) {0} 128".format(HEX40), "SPI 16 is out of range"),
    ("x+ rfc4106(gcm(aes)) {0} 128".format(HEX40), "SPI 'x' is not a number"),
    ("-1+ rfc4106(gcm(aes)) {0} 128".format(HEX40), "SPI '-1' is not a number"),
    ("3 rfc4106(gcm(aes)) {0} 128".format(HEX40), r"SPI 3 has no '\+'"),
    ("3+ rfc4106(gcm(aes)) {0} 128".format(HEX40[:-1]), "has 39 hex characters"),
    ("3+ rfc4106(gcm(aes)) {0}0 128".format(HEX40), "has 41 hex characters"),
    ("3+ rfc4106(gcm(aes)) {0}0 128".format(HEX72), "has 73 hex characters"),
    ("3+ rfc4106(gcm(aes)) {0} 128".format("g" * 40), "is not hexadecimal"),
    ("3+  rfc4106(gcm(aes)) {0} 128".format(HEX40), "two spaces in a row"),
    ("3+ rfc4106(gcm(aes)) {0} 128\r\n".format(HEX40), "carriage return"),
    ("3+ rfc4106(gcm(aes)) {0} 128\r".format(HEX40), "carriage return"),
    ("3+ rfc4106(gcm(aes)) {0} 128 extra".format(HEX40), "has 5 fields, expected 4"),
    ("3+ rfc4106(gcm(aes)) {0}".format(HEX40), "has 3 fields, expected 4"),
    ("3+ rfc4106(gcm(aes)) {0} 128 ".format(HEX40), "starts or ends with whitespace"),
    (" 3+ rfc4106(gcm(aes)) {0} 128".format(HEX40), "starts or ends with whitespace"),
    ("3+\trfc4106(gcm(aes)) {0} 128".format(HEX40), "contains a tab"),
    ("3+ gcm(aes) {0} 128".format(HEX40), "Algorithm 'gcm\\(aes\\)' is not supported"),
    ("3+ rfc4106(gcm(aes)) {0} 256".format(HEX40), "ICV length 256 is not supported"),
    ("3+ rfc4106(gcm(aes)) {0} 64".format(HEX40), "ICV length 64 is not supported"),
    ("3+ rfc4106(gcm(aes)) {0} abc".format(HEX40), "ICV length 'abc' is not a number"),
    (
        "3+ rfc4106(gcm(aes)) {0} 128\n4+ rfc4106(gcm(aes)) {0} 128".format(HEX40),
        "more than one line",
    ),
]


@pytest.mark.parametrize("line, message", BAD_LINES, ids=[message for line, message in BAD_LINES])
def test_parse_rejects_bad_line(line, message):
    with pytest.raises(KeyLineError, match=message):
        parse_key_line(line)


@pytest.mark.parametrize("line, message", BAD_LINES, ids=[message for line, message in BAD_LINES])
def test_error_never_contains_key_material(line, message):
    with pytest.raises(KeyLineError) as caught:
        parse_key_line(line)
    for secret in (HEX40, HEX72, HEX40[:-1]):
        assert secret not in str(caught.value)


def test_repr_hides_key_material():
    key = generate_key(spi=2)
    assert key.key_hex not in repr(key)
    assert key.key_hex not in str(key.describe())
