# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kubecrypt maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Parse, format, generate and rotate Cilium IPsec key lines.

A Cilium IPsec Secret holds one AEAD key line of four fields separated by single spaces::

    <SPI>+ rfc4106(gcm(aes)) <hex key material> <ICV bits>

Cilium splits the line on exactly one space, so a doubled space or a carriage return breaks the
agent. The key material is an AES key followed by a 4-byte salt, which is why the kernel only
accepts 20, 28 or 36 bytes. The ``+`` after the SPI turns on per-tunnel keys, the fix for
CVE-2024-28860. This file does no I/O.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import re
import secrets

ALGORITHM = "rfc4106(gcm(aes))"
MIN_SPI = 1
MAX_SPI = 15
SALT_BYTES = 4
# AES key size in bits mapped to the length of the key material (AES key plus salt) in bytes.
KEY_MATERIAL_BYTES = {128: 20, 192: 28, 256: 36}
# The kernel's rfc4106 accepts 8, 12 or 16 byte ICVs and Cilium accepts 96, 128 or 256 bits,
# so only 96 and 128 work on both.
ICV_BITS = (96, 128)
DEFAULT_KEY_BITS = 128
DEFAULT_ICV_BITS = 128

_HEX = re.compile(r"\A[0-9a-fA-F]+\Z")
_DIGITS = re.compile(r"\A[0-9]+\Z")


class KeyLineError(ValueError):
    """An IPsec key line that Cilium or the kernel would reject."""


class IPsecKey:
    """One parsed IPsec key line."""

    def __init__(self, spi, key_hex, icv_bits=DEFAULT_ICV_BITS, per_tunnel=True):
        self.spi = spi
        self.key_hex = key_hex.lower()
        self.icv_bits = icv_bits
        self.per_tunnel = per_tunnel
        self.algorithm = ALGORITHM

    @property
    def key_bits(self):
        """AES key size in bits, derived from the key material length."""
        material_bytes = len(self.key_hex) // 2
        for bits, size in KEY_MATERIAL_BYTES.items():
            if size == material_bytes:
                return bits
        raise KeyLineError(
            "Key material of {0} bytes matches no AES key size.".format(material_bytes)
        )

    @property
    def fingerprint(self):
        """SHA-256 of the key material, shortened; identifies a key without revealing it."""
        digest = hashlib.sha256(bytes.fromhex(self.key_hex)).hexdigest()
        return "SHA256:" + digest[:16]

    def line(self):
        """Format the key as the single line Cilium reads, without a trailing newline."""
        suffix = "+" if self.per_tunnel else ""
        return "{0}{1} {2} {3} {4}".format(
            self.spi, suffix, self.algorithm, self.key_hex, self.icv_bits
        )

    def describe(self):
        """Return the key's metadata, safe to show in diffs and results."""
        return {
            "spi": self.spi,
            "per_tunnel": self.per_tunnel,
            "algorithm": self.algorithm,
            "key_bits": self.key_bits,
            "icv_bits": self.icv_bits,
            "fingerprint": self.fingerprint,
        }

    def __repr__(self):
        # The key material stays out of the representation so that it cannot reach a log.
        return "IPsecKey(spi={0}, key_bits={1}, icv_bits={2}, fingerprint={3})".format(
            self.spi, self.key_bits, self.icv_bits, self.fingerprint
        )


def next_spi(spi):
    """Return the SPI that follows ``spi``: one more, and 15 rolls over to 1."""
    validate_spi(spi)
    return spi % MAX_SPI + 1


def validate_spi(spi):
    """Raise KeyLineError unless ``spi`` is an integer from 1 to 15."""
    if isinstance(spi, bool) or not isinstance(spi, int):
        raise KeyLineError("SPI {0!r} is not an integer.".format(spi))
    if spi < MIN_SPI or spi > MAX_SPI:
        raise KeyLineError(
            "SPI {0} is out of range: Cilium accepts key IDs from 1 to 15.".format(spi)
        )


def validate_key_bits(key_bits):
    """Raise KeyLineError unless ``key_bits`` is an AES key size the kernel accepts."""
    if key_bits not in KEY_MATERIAL_BYTES:
        raise KeyLineError(
            "Key size {0} is not supported: use 128, 192 or 256 bits.".format(key_bits)
        )


def validate_icv_bits(icv_bits):
    """Raise KeyLineError unless ``icv_bits`` is an ICV length both Cilium and the kernel accept."""
    if icv_bits not in ICV_BITS:
        raise KeyLineError(
            "ICV length {0} is not supported: the kernel's rfc4106(gcm(aes)) accepts 96 or "
            "128 bits (use 128).".format(icv_bits)
        )


def generate_key(spi, key_bits=DEFAULT_KEY_BITS, icv_bits=DEFAULT_ICV_BITS):
    """Generate a per-tunnel key with fresh random material from the OS's CSPRNG."""
    validate_spi(spi)
    validate_key_bits(key_bits)
    validate_icv_bits(icv_bits)
    material = secrets.token_bytes(KEY_MATERIAL_BYTES[key_bits])
    return IPsecKey(spi=spi, key_hex=material.hex(), icv_bits=icv_bits, per_tunnel=True)


def rotate_key(current):
    """Generate the successor of ``current``: next SPI, same algorithm, size, ICV and ``+``.

    Cilium ignores a rotation that changes the key length, and an unchanged SPI leaves the
    agents on mismatched keys, so neither can happen here.
    """
    return IPsecKey(
        spi=next_spi(current.spi),
        key_hex=secrets.token_bytes(len(current.key_hex) // 2).hex(),
        icv_bits=current.icv_bits,
        per_tunnel=current.per_tunnel,
    )


def parse_key_line(text):
    """Parse the content of a Cilium IPsec key file into an IPsecKey.

    Accept what Cilium's agent accepts for an AES-GCM key, except that a global key (no ``+``)
    is rejected. Each rejection raises KeyLineError with a message that names the defect.
    A single trailing line feed is accepted because the agent reads the file line by line.
    """
    if text is None or text == "" or text == "\n":
        raise KeyLineError(
            "The key is empty: Cilium would start with SPI 0 and encrypt nothing."
        )
    if "\r" in text:
        raise KeyLineError(
            "The key line contains a carriage return (CRLF line ending): Cilium splits on "
            "single spaces, so the ICV field would not parse."
        )
    if text.endswith("\n"):
        text = text[:-1]
    if "\n" in text:
        raise KeyLineError(
            "The key contains more than one line: write exactly one key line."
        )
    if text != text.strip(" \t"):
        raise KeyLineError(
            "The key line starts or ends with whitespace: Cilium splits on single spaces, "
            "so the extra space makes an empty field."
        )
    if "\t" in text:
        raise KeyLineError(
            "The key line contains a tab: separate the fields with single spaces."
        )
    if "  " in text:
        raise KeyLineError(
            "The key line contains two spaces in a row: separate the fields with exactly "
            "one space."
        )

    fields = text.split(" ")
    if len(fields) < 4:
        raise KeyLineError(
            "The key line has {0} fields, expected 4: '<SPI>+ rfc4106(gcm(aes)) <hex> "
            "<ICV bits>'.".format(len(fields))
        )
    if len(fields) > 4:
        raise KeyLineError(
            "The key line has {0} fields, expected 4: only the AES-GCM form '<SPI>+ "
            "rfc4106(gcm(aes)) <hex> <ICV bits>' is supported.".format(len(fields))
        )

    spi_field, algorithm, key_field, icv_field = fields
    spi, per_tunnel = _parse_spi_field(spi_field)
    if algorithm != ALGORITHM:
        raise KeyLineError(
            "Algorithm {0!r} is not supported: use {1}.".format(algorithm, ALGORITHM)
        )
    key_hex = _parse_key_field(key_field)
    icv_bits = _parse_icv_field(icv_field)
    return IPsecKey(spi=spi, key_hex=key_hex, icv_bits=icv_bits, per_tunnel=per_tunnel)


def _parse_spi_field(field):
    per_tunnel = field.endswith("+")
    digits = field[:-1] if per_tunnel else field
    if not _DIGITS.match(digits):
        raise KeyLineError(
            "SPI {0!r} is not a number: the first field is a key ID from 1 to 15 followed "
            "by '+'.".format(digits)
        )
    spi = int(digits)
    validate_spi(spi)
    if not per_tunnel:
        raise KeyLineError(
            "SPI {0} has no '+': global keys reuse ESP sequence numbers across nodes "
            "(CVE-2024-28860). Write '{0}+' to use per-tunnel keys.".format(spi)
        )
    return spi, per_tunnel


def _parse_key_field(field):
    key_hex = field[2:] if field[:2] in ("0x", "0X") else field
    if not _HEX.match(key_hex):
        raise KeyLineError(
            "The key material is not hexadecimal: use only the characters 0-9 and a-f."
        )
    valid_lengths = sorted(2 * size for size in KEY_MATERIAL_BYTES.values())
    if len(key_hex) not in valid_lengths:
        raise KeyLineError(
            "The key material has {0} hex characters, expected 40 (AES-128), 56 (AES-192) "
            "or 72 (AES-256): an AES key plus a 4-byte salt.".format(len(key_hex))
        )
    return key_hex


def _parse_icv_field(field):
    if not _DIGITS.match(field):
        raise KeyLineError(
            "ICV length {0!r} is not a number: use 128.".format(field)
        )
    icv_bits = int(field)
    validate_icv_bits(icv_bits)
    return icv_bits
