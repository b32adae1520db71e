# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kubecrypt maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Compute the Cilium Helm values that turn on transparent encryption, per version.

The Cilium charts 1.16 to 1.20 have no schema enum for encryption.type and do not
forbid unknown keys, and every template branch is a case-sensitive equality test. A
typo such as WireGuard, or a key that the target version removed, therefore installs
Cilium without the requested encryption and without an error. These functions reject
such values before Helm renders them, and return the warnings for values that are
allowed but have no effect.

Error messages name each input by the cilium_encryption role variable that sets it
(``INPUT_NAMES``). This file does no I/O.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import collections
import copy
import ipaddress
import json
import re

SUPPORTED_MAJOR = 1
MIN_MINOR = 16
MAX_MINOR = 20
SUPPORTED_RANGE = "{0}.{1} to {0}.{2}".format(SUPPORTED_MAJOR, MIN_MINOR, MAX_MINOR)

ENCRYPTION_TYPES = ("ipsec", "wireguard")
# Methods that hubble.tls.auto.method and clustermesh.apiserver.tls.auto.method accept
# in every supported chart (values.yaml comments). The helm method signs new
# certificates on every render, so each helm upgrade changes the release.
TLS_AUTO_METHODS = ("helm", "cronJob", "certmanager")
TLS_AUTO_PATHS = (
    ("hubble", "tls", "auto"),
    ("clustermesh", "apiserver", "tls", "auto"),
)
CERT_MANAGER_ISSUER_KEYS = ("group", "kind", "name")
STRICT_MODE_OPTIONS = ("enabled", "cidr", "allow_remote_node_identities", "ingress")
STRICT_MODE_KEY_LIST = "enabled, cidr, allow_remote_node_identities and ingress"
# The kubeProxyReplacement strings that values.yaml documents in charts 1.16 to 1.20.
# The schema of charts 1.18 and later also allows a boolean.
KUBE_PROXY_REPLACEMENT_STRINGS = ("true", "false")

INPUT_NAMES = {
    "chart_version": "cilium_encryption_chart_version",
    "encryption_type": "cilium_encryption_type",
    "node_encryption": "cilium_encryption_node_encryption",
    "ipsec_secret_name": "cilium_encryption_ipsec_secret_name",
    "ipsec_key_file": "cilium_encryption_ipsec_key_file",
    "ipsec_key_watcher": "cilium_encryption_ipsec_key_watcher",
    "ipsec_key_rotation_duration": "cilium_encryption_ipsec_key_rotation_duration",
    "strict_mode": "cilium_encryption_strict_mode",
    "tls_auto_method": "cilium_encryption_tls_auto_method",
    "tls_cert_manager_issuer": "cilium_encryption_tls_cert_manager_issuer",
    "allow_helm_tls_method": "cilium_encryption_allow_helm_tls_method",
    "istio_compatible": "cilium_encryption_istio_compatible",
    "extra_values": "cilium_encryption_helm_values",
}

# Leaf paths under encryption in each chart's values.yaml, with the first and last minor
# release of 1.x whose values.yaml contains them. encryption.ztunnel.* is listed apart.
ENCRYPTION_KEYS = {
    "enabled": (16, 20),
    "type": (16, 20),
    "nodeEncryption": (16, 20),
    "strictMode.enabled": (16, 19),
    "strictMode.cidr": (16, 19),
    "strictMode.allowRemoteNodeIdentities": (16, 19),
    "strictMode.egress.enabled": (19, 20),
    "strictMode.egress.cidr": (19, 20),
    "strictMode.egress.allowRemoteNodeIdentities": (19, 20),
    "strictMode.ingress.enabled": (19, 20),
    "ipsec.keyFile": (16, 20),
    "ipsec.mountPath": (16, 20),
    "ipsec.secretName": (16, 20),
    "ipsec.interface": (16, 20),
    "ipsec.keyWatcher": (16, 20),
    "ipsec.keyRotationDuration": (16, 20),
    "ipsec.encryptedOverlay": (16, 19),
    "wireguard.userspaceFallback": (16, 16),
    "wireguard.persistentKeepalive": (16, 20),
}
# Subtrees under encryption whose content is not checked, with their first and last
# minor release. The ztunnel settings apply only to encryption.type ztunnel, which this
# module rejects.
ENCRYPTION_FREE_FORM = {"ztunnel": (19, 20)}
ENCRYPTION_MAPS = frozenset(
    ".".join(path.split(".")[:depth])
    for path in ENCRYPTION_KEYS
    for depth in range(1, path.count(".") + 1)
)

# Retired encryption keys: from which minor release the chart fails on or ignores each
# key, and the fix. The chart's validate.yaml fails on the top-level keys, and the
# chart ignores the others.
RetiredStage = collections.namedtuple("RetiredStage", "since effect fix")
_TOP_LEVEL_REMOVED = "was removed in Cilium 1.16, and the {version} chart fails on it"
_STRICT_REMOVED = (
    "was removed in Cilium 1.20, so the {version} chart ignores it and strict mode "
    "would be off"
)
RETIRED_KEYS = {
    "keyFile": (
        RetiredStage(16, _TOP_LEVEL_REMOVED, "Use encryption.ipsec.keyFile instead."),
    ),
    "mountPath": (
        RetiredStage(16, _TOP_LEVEL_REMOVED, "Use encryption.ipsec.mountPath instead."),
    ),
    "secretName": (
        RetiredStage(
            16, _TOP_LEVEL_REMOVED, "Use encryption.ipsec.secretName instead."
        ),
    ),
    "interface": (
        RetiredStage(16, _TOP_LEVEL_REMOVED, "Use encryption.ipsec.interface instead."),
        RetiredStage(20, _TOP_LEVEL_REMOVED, "Use devices instead."),
    ),
    "wireguard.userspaceFallback": (
        RetiredStage(
            17,
            "was removed in Cilium 1.17, so the {version} chart ignores it",
            "Remove it, because Cilium 1.17 and later use only the WireGuard module "
            "of the kernel (Linux 5.6 or later).",
        ),
    ),
    "ipsec.encryptedOverlay": (
        RetiredStage(
            20,
            "was removed in Cilium 1.20, so the {version} chart ignores it",
            "Remove it, because IPsec encrypts after overlay encapsulation from "
            "Cilium 1.18 on.",
        ),
    ),
    "ipsec.interface": (
        RetiredStage(
            20,
            "has no effect from Cilium 1.20, because the {version} chart no longer "
            "renders it",
            "Use devices instead.",
        ),
    ),
    "strictMode.enabled": (
        RetiredStage(
            20,
            _STRICT_REMOVED,
            "Use the enabled option of {strict_mode} or "
            "encryption.strictMode.egress.enabled instead.",
        ),
    ),
    "strictMode.cidr": (
        RetiredStage(
            20,
            _STRICT_REMOVED,
            "Use the cidr option of {strict_mode} or encryption.strictMode.egress.cidr "
            "instead.",
        ),
    ),
    "strictMode.allowRemoteNodeIdentities": (
        RetiredStage(
            20,
            _STRICT_REMOVED,
            "Use the allow_remote_node_identities option of {strict_mode} or "
            "encryption.strictMode.egress.allowRemoteNodeIdentities instead.",
        ),
    ),
}
# Advice for keys that a later release added, keyed by path prefix.
NEW_KEY_FIXES = {
    "strictMode.egress": (
        "Use {strict_mode}, which renders encryption.strictMode.enabled, cidr and "
        "allowRemoteNodeIdentities for this version."
    ),
    "strictMode.ingress": (
        "Strict ingress encryption needs Cilium 1.19 or later, so remove it or install "
        "Cilium 1.19 or later."
    ),
}
# Keys that a release still renders but marks deprecated or without effect, with the
# first minor release that does so and the warning.
DEPRECATED_KEYS = {
    "wireguard.userspaceFallback": (
        16,
        "is deprecated in Cilium 1.16 and removed in 1.17. Remove it before upgrading.",
    ),
    "ipsec.encryptedOverlay": (
        18,
        "has no effect from Cilium 1.18, because IPsec always encrypts after overlay "
        "encapsulation. Remove it.",
    ),
    "strictMode.enabled": (
        19,
        "is deprecated in Cilium 1.19 and removed in 1.20. Use the enabled option of "
        "{strict_mode} or encryption.strictMode.egress.enabled instead.",
    ),
    "strictMode.cidr": (
        19,
        "is deprecated in Cilium 1.19 and removed in 1.20. Use the cidr option of "
        "{strict_mode} or encryption.strictMode.egress.cidr instead.",
    ),
    "strictMode.allowRemoteNodeIdentities": (
        19,
        "is deprecated in Cilium 1.19 and removed in 1.20. Use the "
        "allow_remote_node_identities option of {strict_mode} or "
        "encryption.strictMode.egress.allowRemoteNodeIdentities instead.",
    ),
}

_VERSION = re.compile(
    r"\Av?(\d+)\.(\d+)\.(\d+)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?\Z"
)
# A Go duration such as 5m or 1h30m, the format of encryption.ipsec.keyRotationDuration.
_GO_DURATION = re.compile(r"\A(?:\d+(?:\.\d+)?(?:ns|us|ms|s|m|h))+\Z")
_MISSING = object()


class ValuesError(ValueError):
    """Helm values that would install Cilium without the requested encryption."""


class ChartVersion(collections.namedtuple("ChartVersion", "major minor patch")):
    """A Cilium chart version, without the v prefix and pre-release suffix."""

    def __str__(self):
        return "{0}.{1}.{2}".format(self.major, self.minor, self.patch)


ComputedValues = collections.namedtuple("ComputedValues", "values warnings")


def show(value):
    """Format a value for a message as it would read in YAML or JSON."""
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


def merge(base, override):
    """Merge ``override`` into a copy of ``base``.

    Dicts merge key by key and ``override`` wins. Any other value, lists included,
    replaces the value in ``base``. A null stays null, which Helm reads as "use the
    chart default".
    """
    merged = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def get_path(values, path, default=None):
    """Return the value at ``path``, a tuple of keys, in nested dicts or ``default``."""
    current = values
    for key in path:
        if not isinstance(current, dict) or key not in current:
            return default
        current = current[key]
    return current


def set_path(values, path, value):
    """Set the value at ``path`` in nested dicts, creating the dicts on the way."""
    current = values
    for key in path[:-1]:
        current = current.setdefault(key, {})
    current[path[-1]] = value


def parse_chart_version(text):
    """Parse a chart version such as 1.20.0 or v1.19.6 into a ChartVersion."""
    match = _VERSION.match(text) if isinstance(text, str) else None
    if match is None:
        raise ValuesError(
            "{0} {1} is not a Cilium chart version. Set it to an exact release such as "
            "1.20.0 or v1.20.0, because the Helm values depend on the "
            "version.".format(INPUT_NAMES["chart_version"], show(text))
        )
    return ChartVersion(*(int(part) for part in match.groups()))


def check_supported(version, text):
    if version.major != SUPPORTED_MAJOR or not MIN_MINOR <= version.minor <= MAX_MINOR:
        raise ValuesError(
            "Cilium chart version {0} is not supported. Set {1} to a release from {2}, "
            "the versions this collection supports.".format(
                text, INPUT_NAMES["chart_version"], SUPPORTED_RANGE
            )
        )


def check_encryption_type(value, name, where=""):
    if value not in ENCRYPTION_TYPES:
        raise ValuesError(
            "{0} {1}{2} is invalid. Use ipsec or wireguard in lower case, the two "
            "types this collection supports. The chart installs Cilium without "
            "encryption for a misspelled type.".format(name, show(value), where)
        )


def check_bool(value, name):
    if not isinstance(value, bool):
        raise ValuesError(
            "{0} {1} is invalid. Set it to true or false.".format(name, show(value))
        )


def check_string(value, name):
    if not isinstance(value, str) or not value:
        raise ValuesError(
            "{0} {1} is invalid. Set it to a non-empty string.".format(
                name, show(value)
            )
        )


def check_extra_values(extra_values):
    """Return the extra values as a dict, or raise if they are not a mapping."""
    if extra_values is None:
        return {}
    if not isinstance(extra_values, dict):
        raise ValuesError(
            "{0} {1} is invalid. Set it to a mapping of Helm values.".format(
                INPUT_NAMES["extra_values"], show(extra_values)
            )
        )
    encryption = extra_values.get("encryption", {})
    if not isinstance(encryption, dict):
        raise ValuesError(
            "encryption {0} in {1} is invalid. Set it to a mapping or leave it "
            "out.".format(show(encryption), INPUT_NAMES["extra_values"])
        )
    return extra_values


def flatten(values, prefix=""):
    """Yield (dotted path, value) for each leaf of nested dicts, empty dicts too."""
    for key, value in values.items():
        path = "{0}{1}".format(prefix, key)
        if isinstance(value, dict) and value:
            yield from flatten(value, path + ".")
        else:
            yield path, value


def _retired_stage(path, version):
    stages = [
        stage for stage in RETIRED_KEYS.get(path, ()) if stage.since <= version.minor
    ]
    return stages[-1] if stages else None


def _in_free_form_subtree(path, version):
    for subtree, (first, last) in ENCRYPTION_FREE_FORM.items():
        if (path == subtree or path.startswith(subtree + ".")) and (
            first <= version.minor <= last
        ):
            return True
    return False


def _new_key_fix(path):
    for prefix, fix in NEW_KEY_FIXES.items():
        if path == prefix or path.startswith(prefix + "."):
            return fix
    return "Remove it."


def check_encryption_key(path, value, version):
    """Raise if the chart of ``version`` fails on or ignores encryption.``path``."""
    key = "encryption." + path
    source = INPUT_NAMES["extra_values"]

    stage = _retired_stage(path, version)
    if stage is not None:
        raise ValuesError(
            "{0} in {1} {2}. {3}".format(
                key,
                source,
                stage.effect.format(version=version),
                stage.fix.format(strict_mode=INPUT_NAMES["strict_mode"]),
            )
        )

    if path in ENCRYPTION_MAPS:
        if value == {}:
            return
        raise ValuesError(
            "{0} {1} in {2} is invalid. Set it to a mapping.".format(
                key, show(value), source
            )
        )

    if path in ENCRYPTION_KEYS:
        first, last = ENCRYPTION_KEYS[path]
        if version.minor < first:
            raise ValuesError(
                "{0} in {1} does not exist before Cilium 1.{2}, so the {3} chart "
                "ignores it. {4}".format(
                    key,
                    source,
                    first,
                    version,
                    _new_key_fix(path).format(strict_mode=INPUT_NAMES["strict_mode"]),
                )
            )
        if version.minor <= last:
            return

    if _in_free_form_subtree(path, version):
        return
    raise ValuesError(
        "{0} in {1} is not a value of the Cilium {2} chart, which ignores unknown "
        "values. Check the spelling against the chart's values.yaml.".format(
            key, source, version
        )
    )


def check_encryption_keys(extra_values, version):
    """Raise on encryption keys the chart fails on or ignores, or return warnings."""
    warnings = []
    for path, value in flatten(extra_values.get("encryption") or {}):
        check_encryption_key(path, value, version)
        deprecation = DEPRECATED_KEYS.get(path)
        if deprecation is not None and deprecation[0] <= version.minor:
            warnings.append(
                "encryption.{0} in {1} {2}".format(
                    path,
                    INPUT_NAMES["extra_values"],
                    deprecation[1].format(strict_mode=INPUT_NAMES["strict_mode"]),
                )
            )
    return warnings


def normalize_strict_mode(strict_mode):
    """Check the strict mode options and return them with defaults, or None if empty."""
    name = INPUT_NAMES["strict_mode"]
    if strict_mode is None or strict_mode == {}:
        return None
    if not isinstance(strict_mode, dict):
        raise ValuesError(
            "{0} {1} is invalid. Set it to a mapping with the keys {2}.".format(
                name, show(strict_mode), STRICT_MODE_KEY_LIST
            )
        )

    unknown = sorted(set(strict_mode) - set(STRICT_MODE_OPTIONS))
    if unknown:
        raise ValuesError(
            "{0} has the unknown key {1}. Use only the keys {2}.".format(
                name, show(unknown[0]), STRICT_MODE_KEY_LIST
            )
        )

    options = {
        "enabled": strict_mode.get("enabled", False),
        "cidr": strict_mode.get("cidr", ""),
        "allow_remote_node_identities": strict_mode.get(
            "allow_remote_node_identities", False
        ),
        "ingress": strict_mode.get("ingress", False),
    }
    for key in ("enabled", "allow_remote_node_identities", "ingress"):
        check_bool(options[key], "{0}.{1}".format(name, key))
    if not isinstance(options["cidr"], str):
        raise ValuesError(
            "{0}.cidr {1} is invalid. Set it to an IPv4 CIDR such as "
            "10.0.0.0/8.".format(name, show(options["cidr"]))
        )
    return options


def build_strict_mode(options, version):
    """Return the encryption.strictMode block of ``version`` for the options."""
    egress = {
        "enabled": options["enabled"],
        "cidr": options["cidr"],
        "allowRemoteNodeIdentities": options["allow_remote_node_identities"],
    }
    if version.minor >= 19:
        return {"egress": egress, "ingress": {"enabled": options["ingress"]}}

    if options["ingress"]:
        raise ValuesError(
            "{0} turns on strict ingress encryption, which needs Cilium 1.19 or "
            "later, but the target chart version is {1}. Set ingress to false or "
            "install Cilium 1.19 or later.".format(INPUT_NAMES["strict_mode"], version)
        )
    return egress


def build_encryption(
    encryption_type,
    node_encryption,
    ipsec_secret_name,
    ipsec_key_file,
    ipsec_key_watcher,
    ipsec_key_rotation_duration,
    strict_mode,
    version,
):
    """Return the encryption block of the Helm values for the checked inputs."""
    encryption = {
        "enabled": True,
        "type": encryption_type,
        "nodeEncryption": node_encryption,
    }
    if encryption_type == "ipsec":
        ipsec = {"secretName": ipsec_secret_name, "keyFile": ipsec_key_file}
        if ipsec_key_watcher is not None:
            ipsec["keyWatcher"] = ipsec_key_watcher
        if ipsec_key_rotation_duration is not None:
            ipsec["keyRotationDuration"] = ipsec_key_rotation_duration
        encryption["ipsec"] = ipsec
    if strict_mode is not None:
        encryption["strictMode"] = build_strict_mode(strict_mode, version)
    return encryption


def check_ipsec_options(
    ipsec_secret_name, ipsec_key_file, ipsec_key_watcher, ipsec_key_rotation_duration
):
    check_string(ipsec_secret_name, INPUT_NAMES["ipsec_secret_name"])
    check_string(ipsec_key_file, INPUT_NAMES["ipsec_key_file"])
    if ipsec_key_watcher is not None:
        check_bool(ipsec_key_watcher, INPUT_NAMES["ipsec_key_watcher"])
    if ipsec_key_rotation_duration is not None and not (
        isinstance(ipsec_key_rotation_duration, str)
        and _GO_DURATION.match(ipsec_key_rotation_duration)
    ):
        raise ValuesError(
            "{0} {1} is invalid. Set it to a duration with a unit, such as 5m or "
            "1h30m.".format(
                INPUT_NAMES["ipsec_key_rotation_duration"],
                show(ipsec_key_rotation_duration),
            )
        )


def check_cert_manager_issuer(issuer):
    name = INPUT_NAMES["tls_cert_manager_issuer"]
    valid = (
        isinstance(issuer, dict)
        and set(issuer) <= set(CERT_MANAGER_ISSUER_KEYS)
        and isinstance(issuer.get("name"), str)
        and issuer["name"] != ""
    )
    if not valid:
        raise ValuesError(
            "{0} {1} is invalid. Set it to the cert-manager issuer reference, a "
            "mapping with name and optionally kind and group, for example "
            "{{kind: ClusterIssuer, name: ca-issuer}}.".format(name, show(issuer))
        )


def build_tls(tls_auto_method, tls_cert_manager_issuer):
    """Return the Hubble and clustermesh-apiserver TLS values for the TLS method."""
    if tls_auto_method not in TLS_AUTO_METHODS:
        raise ValuesError(
            "{0} {1} is invalid. Use cronJob or certmanager, with this "
            "spelling.".format(INPUT_NAMES["tls_auto_method"], show(tls_auto_method))
        )
    auto = {"method": tls_auto_method}
    if tls_auto_method == "certmanager":
        check_cert_manager_issuer(tls_cert_manager_issuer)
        auto["certManagerIssuerRef"] = copy.deepcopy(tls_cert_manager_issuer)

    values = {}
    for path in TLS_AUTO_PATHS:
        set_path(values, path, copy.deepcopy(auto))
    return values


def check_final_encryption(values, encryption_type, ipsec_secret_name, ipsec_key_file):
    """Raise if the extra values turn encryption off or change what the inputs set."""
    source = INPUT_NAMES["extra_values"]
    encryption = values["encryption"]

    if encryption.get("enabled") is not True:
        raise ValuesError(
            "encryption.enabled {0} in {1} is invalid, because this role installs "
            "Cilium with encryption on only. Remove encryption.enabled from "
            "{1}.".format(show(encryption.get("enabled")), source)
        )

    final_type = encryption.get("type")
    check_encryption_type(final_type, "encryption.type", " in " + source)
    if final_type != encryption_type:
        raise ValuesError(
            "encryption.type {0} in {1} differs from {2} {3}. Set the type in {2} "
            "only.".format(
                show(final_type),
                source,
                INPUT_NAMES["encryption_type"],
                show(encryption_type),
            )
        )

    if encryption_type != "ipsec":
        return
    # The role creates the Secret that these name, and an agent whose Secret is missing
    # does not start.
    for key, expected, input_name in (
        ("secretName", ipsec_secret_name, "ipsec_secret_name"),
        ("keyFile", ipsec_key_file, "ipsec_key_file"),
    ):
        actual = get_path(encryption, ("ipsec", key))
        if actual != expected:
            raise ValuesError(
                "encryption.ipsec.{0} {1} in {2} differs from {3} {4}. Set it only in "
                "{3}, which the role also uses to create the IPsec key Secret.".format(
                    key, show(actual), source, INPUT_NAMES[input_name], show(expected)
                )
            )


def _strict_egress_path(version):
    if version.minor >= 19:
        return ("encryption", "strictMode", "egress")
    return ("encryption", "strictMode")


def check_strict_egress(values, block_path, version, encryption_type):
    """Check one strict egress block of the final values and return its warnings."""
    block = get_path(values, block_path, {})
    if not isinstance(block, dict) or block.get("enabled") is not True:
        return []
    key = ".".join(block_path)
    name = INPUT_NAMES["strict_mode"]

    if encryption_type == "ipsec" and version.minor < 19:
        raise ValuesError(
            "Strict egress encryption ({0}.enabled) with IPsec needs Cilium 1.19 or "
            "later, but the target chart version is {1}. Earlier releases implement "
            "strict mode for WireGuard only. Use wireguard, turn strict mode off in "
            "{2}, or install Cilium 1.19 or later.".format(key, version, name)
        )

    cidr = block.get("cidr")
    if not cidr:
        raise ValuesError(
            "Strict egress encryption is on but {0}.cidr is empty. Set cidr in {1} to "
            "the cluster's IPv4 pod CIDR, for example 10.0.0.0/8.".format(key, name)
        )
    try:
        ipaddress.IPv4Network(cidr, strict=False)
    except (TypeError, ValueError):
        raise ValuesError(
            "{0}.cidr {1} is not an IPv4 CIDR. Set cidr in {2} to the cluster's IPv4 "
            "pod CIDR, for example 10.0.0.0/8, because strict mode covers IPv4 traffic "
            "only.".format(key, show(cidr), name)
        )

    # values.yaml documents allowRemoteNodeIdentities as required with tunneling, and
    # with direct routing when the node and pod CIDRs overlap, which is not checked.
    if block.get("allowRemoteNodeIdentities") is not True and (
        values.get("routingMode") != "native"
    ):
        return [
            "{0}.allowRemoteNodeIdentities is false while routingMode is not native. "
            "The chart documents it as required with tunneling, so set "
            "allow_remote_node_identities in {1} to true.".format(key, name)
        ]
    return []


def check_strict_ingress(values, version, encryption_type):
    """Check strict ingress in the final values and return its warnings."""
    if version.minor < 19:
        return []
    enabled = get_path(values, ("encryption", "strictMode", "ingress", "enabled"))
    if enabled is not True:
        return []

    if encryption_type != "wireguard":
        raise ValuesError(
            "Strict ingress encryption (encryption.strictMode.ingress.enabled) "
            "requires WireGuard, but {0} is {1}. Set ingress to false in {2} or use "
            "wireguard.".format(
                INPUT_NAMES["encryption_type"],
                show(encryption_type),
                INPUT_NAMES["strict_mode"],
            )
        )
    if version.minor == 19 and values.get("routingMode") == "native":
        return [
            "Cilium 1.19 applies strict ingress encryption only with tunneling, but "
            "routingMode is native. Use Cilium 1.20 or tunnel routing."
        ]
    return []


def check_strict_mode(values, version, encryption_type):
    """Check strict mode in the final values and return its warnings."""
    warnings = []
    paths = [_strict_egress_path(version)]
    if version.minor == 19:
        # The 1.19 chart still maps the deprecated keys onto the egress flags.
        paths.append(("encryption", "strictMode"))
    for path in paths:
        warnings.extend(check_strict_egress(values, path, version, encryption_type))
    warnings.extend(check_strict_ingress(values, version, encryption_type))
    return warnings


def check_tls_methods(values, allow_helm_tls_method):
    """Check the Hubble and clustermesh-apiserver TLS methods, and return warnings."""
    warnings = []
    for path in TLS_AUTO_PATHS:
        key = ".".join(path)
        method = get_path(values, path + ("method",))
        if method not in TLS_AUTO_METHODS:
            raise ValuesError(
                "{0}.method {1} is invalid. Use cronJob or certmanager, with this "
                "spelling.".format(key, show(method))
            )

        if method == "helm" and not allow_helm_tls_method:
            raise ValuesError(
                "{0}.method helm makes Helm sign new certificates on every render, so "
                "every run of the role changes the release. Use cronJob or "
                "certmanager, or set {1} to true to accept that.".format(
                    key, INPUT_NAMES["allow_helm_tls_method"]
                )
            )
        if method == "helm":
            warnings.append(
                "{0}.method is helm, so every run of the role signs new certificates "
                "and changes the release.".format(key)
            )

        issuer = get_path(values, path + ("certManagerIssuerRef",))
        if method == "certmanager" and not (isinstance(issuer, dict) and issuer):
            raise ValuesError(
                "{0}.method is certmanager but {0}.certManagerIssuerRef is empty. Set "
                "{1} to the cert-manager issuer, for example {{kind: ClusterIssuer, "
                "name: ca-issuer}}.".format(key, INPUT_NAMES["tls_cert_manager_issuer"])
            )
    return warnings


def check_kube_proxy_replacement(values, version):
    value = values.get("kubeProxyReplacement", False)
    if not (isinstance(value, bool) or value in KUBE_PROXY_REPLACEMENT_STRINGS):
        raise ValuesError(
            "kubeProxyReplacement {0} in {1} is invalid for Cilium {2}. Set it to true "
            "or false.".format(show(value), INPUT_NAMES["extra_values"], version)
        )


def uses_socket_lb(values):
    """Return whether the agents load-balance at the socket, inside pods by default."""
    kube_proxy_replacement = values.get("kubeProxyReplacement")
    if kube_proxy_replacement is True or kube_proxy_replacement == "true":
        return True
    return get_path(values, ("socketLB", "enabled")) is True


def apply_istio_settings(values, extra_values):
    """Set the values Istio needs, or raise if ``extra_values`` set them otherwise."""
    source = INPUT_NAMES["extra_values"]
    istio = INPUT_NAMES["istio_compatible"]

    # With cni.exclusive on, the agent renames other CNI configurations, Istio's
    # included.
    exclusive = get_path(extra_values, ("cni", "exclusive"), _MISSING)
    if exclusive is not _MISSING and exclusive is not False:
        raise ValuesError(
            "cni.exclusive {0} in {1} conflicts with {2}, because Cilium would then "
            "rename the Istio CNI configuration. Remove cni.exclusive from {1} or set "
            "{2} to false.".format(show(exclusive), source, istio)
        )
    set_path(values, ("cni", "exclusive"), False)

    if not uses_socket_lb(values):
        return
    # Socket load-balancing inside pods bypasses the sidecar's redirection.
    host_only = get_path(extra_values, ("socketLB", "hostNamespaceOnly"), _MISSING)
    if host_only is not _MISSING and host_only is not True:
        raise ValuesError(
            "socketLB.hostNamespaceOnly {0} in {1} conflicts with {2}, because socket "
            "load-balancing inside pods bypasses the Istio sidecars. Remove "
            "socketLB.hostNamespaceOnly from {1} or set {2} to false.".format(
                show(host_only), source, istio
            )
        )
    set_path(values, ("socketLB", "hostNamespaceOnly"), True)


def check_node_encryption(values, encryption_type):
    """Return a warning if node encryption is on with IPsec, where it has no effect."""
    if encryption_type != "ipsec":
        return []
    if values["encryption"].get("nodeEncryption") is not True:
        return []
    return [
        "encryption.nodeEncryption has no effect with IPsec, because Cilium encrypts "
        "node-to-node traffic with WireGuard only. Set {0} to false or use "
        "wireguard.".format(INPUT_NAMES["node_encryption"])
    ]


def compute_values(
    chart_version,
    encryption_type,
    node_encryption=False,
    ipsec_secret_name="cilium-ipsec-keys",
    ipsec_key_file="keys",
    ipsec_key_watcher=None,
    ipsec_key_rotation_duration=None,
    strict_mode=None,
    tls_auto_method="cronJob",
    tls_cert_manager_issuer=None,
    allow_helm_tls_method=False,
    istio_compatible=False,
    extra_values=None,
):
    """Compute the complete Helm values for ``chart_version`` and check them.

    Returns a ComputedValues tuple. Its ``values`` are the computed values with
    ``extra_values`` merged on top, and its ``warnings`` list the values that are
    allowed but deprecated or without effect. Raises ValuesError for values that the
    chart fails on or ignores, or that would install Cilium without the requested
    encryption.
    """
    version = parse_chart_version(chart_version)
    check_supported(version, chart_version)
    check_encryption_type(encryption_type, INPUT_NAMES["encryption_type"])
    check_bool(node_encryption, INPUT_NAMES["node_encryption"])
    if encryption_type == "ipsec":
        check_ipsec_options(
            ipsec_secret_name,
            ipsec_key_file,
            ipsec_key_watcher,
            ipsec_key_rotation_duration,
        )
    check_bool(allow_helm_tls_method, INPUT_NAMES["allow_helm_tls_method"])
    check_bool(istio_compatible, INPUT_NAMES["istio_compatible"])
    extra_values = check_extra_values(extra_values)
    warnings = check_encryption_keys(extra_values, version)

    encryption = build_encryption(
        encryption_type,
        node_encryption,
        ipsec_secret_name,
        ipsec_key_file,
        ipsec_key_watcher,
        ipsec_key_rotation_duration,
        normalize_strict_mode(strict_mode),
        version,
    )
    base = {"encryption": encryption}
    base.update(build_tls(tls_auto_method, tls_cert_manager_issuer))
    values = merge(base, extra_values)
    check_kube_proxy_replacement(values, version)
    if istio_compatible:
        apply_istio_settings(values, extra_values)

    check_final_encryption(values, encryption_type, ipsec_secret_name, ipsec_key_file)
    warnings.extend(check_strict_mode(values, version, encryption_type))
    warnings.extend(check_tls_methods(values, allow_helm_tls_method))
    warnings.extend(check_node_encryption(values, encryption_type))
    return ComputedValues(values, warnings)
