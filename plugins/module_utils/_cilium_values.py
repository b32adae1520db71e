# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kubecrypt maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Compute the Cilium Helm values that turn on transparent encryption.

The chart compares encryption.type with a case-sensitive equality test and has no schema enum,
so a typo such as WireGuard renders no encryption at all and no error. These functions reject
such values before Helm sees them. This file does no I/O.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy

ENCRYPTION_TYPES = ("ipsec", "wireguard")
# Top-level keys that chart 1.16 removed in favour of encryption.ipsec.*; helm fails on them.
REMOVED_TOP_LEVEL_KEYS = ("keyFile", "mountPath", "secretName", "interface")


class ValuesError(ValueError):
    """Helm values that would install Cilium without the requested encryption."""


def merge(base, override):
    """Merge ``override`` into a copy of ``base``; dicts merge key by key, the rest replaces."""
    merged = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def validate_encryption_type(value, source="cilium_encryption_type"):
    if value not in ENCRYPTION_TYPES:
        raise ValuesError(
            "{0} {1!r} is invalid: use 'ipsec' or 'wireguard' (lower case; the chart "
            "silently installs Cilium without encryption for any other value).".format(
                source, value
            )
        )


def check_removed_keys(values, source):
    encryption = (values or {}).get("encryption") or {}
    for key in REMOVED_TOP_LEVEL_KEYS:
        if key in encryption:
            raise ValuesError(
                "{0} sets encryption.{1}, which the Cilium chart removed in 1.16 and rejects: "
                "use encryption.ipsec.{1} instead.".format(source, key)
            )


def compute_values(
    encryption_type,
    node_encryption=False,
    ipsec_secret_name="cilium-ipsec-keys",
    ipsec_key_file="keys",
    extra_values=None,
):
    """Return the complete Helm values: the encryption block, with ``extra_values`` on top."""
    validate_encryption_type(encryption_type)
    check_removed_keys(extra_values, "cilium_encryption_helm_values")

    encryption = {
        "enabled": True,
        "type": encryption_type,
        "nodeEncryption": bool(node_encryption),
    }
    if encryption_type == "ipsec":
        encryption["ipsec"] = {"secretName": ipsec_secret_name, "keyFile": ipsec_key_file}
    values = merge({"encryption": encryption}, extra_values)

    final = values.get("encryption") or {}
    if final.get("enabled") is not True:
        raise ValuesError(
            "cilium_encryption_helm_values sets encryption.enabled to {0!r}: this role only "
            "installs Cilium with encryption on.".format(final.get("enabled"))
        )
    validate_encryption_type(final.get("type"), "encryption.type in cilium_encryption_helm_values")
    if final.get("type") != encryption_type:
        raise ValuesError(
            "cilium_encryption_helm_values sets encryption.type to {0!r} but "
            "cilium_encryption_type is {1!r}: set the type in cilium_encryption_type "
            "only.".format(final.get("type"), encryption_type)
        )
    return values
