"""Unit tests for the Cilium Helm values, checked against the upstream chart values.

The tests that need upstream files read values.yaml and values.schema.json from
$KUBECRYPT_UPSTREAM_DIR/cilium/<version>/, and skip when the variable is unset.

A computed key is valid for a chart version when its leaf path (the path to a value that
is not a non-empty mapping) meets one of these rules in that version's values.yaml:

1. The full path exists, and its default is not a non-empty mapping, so a computed value
   never replaces a block of chart settings.
2. A proper prefix of the path has the default {}, a free-form map such as
   hubble.tls.auto.certManagerIssuerRef.
3. The path is a commented-out key ("# key: default" or "#key: default", with the "#" at
   the indentation of the key's siblings). The chart documents optional keys without a
   default this way, for example socketLB.hostNamespaceOnly. A test pins the keys that
   need this rule, so it cannot hide a new one.
"""

import collections
import functools
import itertools
import json
import os
import re

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.kubecrypt.pod_encryption.plugins.filter.cilium_values import (
    FilterModule,
    cilium_values,
)
from ansible_collections.kubecrypt.pod_encryption.plugins.module_utils._cilium_values import (
    ENCRYPTION_FREE_FORM,
    ENCRYPTION_KEYS,
    ChartVersion,
    ValuesError,
    compute_values,
    merge,
    parse_chart_version,
)

VERSIONS = ("1.16.19", "1.17.18", "1.18.12", "1.19.6", "1.20.0")
UPSTREAM_DIR_VARIABLE = "KUBECRYPT_UPSTREAM_DIR"
CIDR = "10.0.0.0/8"
ISSUER = {"group": "cert-manager.io", "kind": "ClusterIssuer", "name": "ca-issuer"}
TLS_AUTO_PATHS = (
    ("hubble", "tls", "auto"),
    ("clustermesh", "apiserver", "tls", "auto"),
)


def minor(version):
    return int(version.split(".")[1])


# Upstream files and the leaf-path rule


def upstream_path(version, name):
    root = os.environ.get(UPSTREAM_DIR_VARIABLE)
    if not root:
        pytest.skip(
            "{0} is not set, so the upstream Cilium chart files are not available. "
            "Set it to the directory that contains cilium/<version>/.".format(
                UPSTREAM_DIR_VARIABLE
            )
        )
    path = os.path.join(root, "cilium", version, name)
    if not os.path.isfile(path):
        pytest.fail(
            "{0} does not exist. Set {1} to the directory that contains "
            "cilium/<version>/.".format(path, UPSTREAM_DIR_VARIABLE)
        )
    return path


@functools.lru_cache(maxsize=None)
def read_text(path):
    with open(path, encoding="utf-8") as handle:
        return handle.read()


@functools.lru_cache(maxsize=None)
def parse_yaml(path):
    return yaml.safe_load(read_text(path))


def upstream_values(version):
    return parse_yaml(upstream_path(version, "values.yaml"))


def upstream_schema(version):
    return parse_yaml(upstream_path(version, "values.schema.json"))


_KEY_LINE = re.compile(r"^( *)([A-Za-z0-9_./-]+):(?: |$)")
_COMMENTED_KEY_LINE = re.compile(r"^( *)# ?([A-Za-z][A-Za-z0-9_]*):(?: |$)")


@functools.lru_cache(maxsize=None)
def commented_keys(version):
    """Return the paths that values.yaml documents as commented-out keys (rule 3)."""
    keys = set()
    ancestors = []
    for line in read_text(upstream_path(version, "values.yaml")).splitlines():
        match = _COMMENTED_KEY_LINE.match(line) or _KEY_LINE.match(line)
        if match is None:
            continue
        indent = len(match.group(1))
        ancestors = [(depth, key) for depth, key in ancestors if depth < indent]
        if line.lstrip().startswith("#"):
            keys.add(tuple(key for depth, key in ancestors) + (match.group(2),))
        else:
            ancestors.append((indent, match.group(2)))
    return frozenset(keys)


def leaf_paths(values, prefix=()):
    """Yield the path of each value that is not a non-empty mapping."""
    for key, value in values.items():
        path = prefix + (key,)
        if isinstance(value, dict) and value:
            yield from leaf_paths(value, path)
        else:
            yield path


def path_rule(version, path):
    """Return the rule (1, 2 or 3) that makes ``path`` valid for ``version``, or None.

    Rule 1 fails for a path whose default is a non-empty mapping, because a computed
    value there would replace a block of chart settings.
    """
    node = upstream_values(version)
    for depth, key in enumerate(path):
        if depth > 0 and node == {}:
            return 2
        if not isinstance(node, dict) or key not in node:
            return 3 if path in commented_keys(version) else None
        node = node[key]
    if isinstance(node, dict) and node:
        return None
    return 1


# The table of versions and settings


Case = collections.namedtuple(
    "Case", "encryption_type node_encryption strict istio kube_proxy tls"
)
CASE_CHOICES = (
    ("ipsec", "wireguard"),
    (False, True),
    ("off", "egress", "ingress", "egress+ingress"),
    (False, True),
    (None, "true", True),
    ("cronJob", "certmanager"),
)


def case_id(version, case):
    return "-".join(
        [
            version,
            case.encryption_type,
            "node" if case.node_encryption else "pods",
            "strict=" + case.strict,
            "istio" if case.istio else "no-istio",
            "kpr={0!r}".format(case.kube_proxy),
            case.tls,
        ]
    )


def case_allowed(version, case):
    """Return whether the charts support the case, which only strict mode limits."""
    if "ingress" in case.strict:
        if minor(version) < 19 or case.encryption_type != "wireguard":
            return False
    if "egress" in case.strict:
        if case.encryption_type == "ipsec" and minor(version) < 19:
            return False
    return True


def case_kwargs(case):
    kwargs = {
        "node_encryption": case.node_encryption,
        "istio_compatible": case.istio,
        "tls_auto_method": case.tls,
        "extra_values": {},
    }
    if case.encryption_type == "ipsec":
        kwargs["ipsec_key_watcher"] = True
        kwargs["ipsec_key_rotation_duration"] = "10m"
    if case.tls == "certmanager":
        kwargs["tls_cert_manager_issuer"] = ISSUER
    if case.strict != "off":
        egress = "egress" in case.strict
        kwargs["strict_mode"] = {
            "enabled": egress,
            "cidr": CIDR if egress else "",
            "allow_remote_node_identities": True,
            "ingress": "ingress" in case.strict,
        }
    if case.kube_proxy is not None:
        kwargs["extra_values"]["kubeProxyReplacement"] = case.kube_proxy
    return kwargs


def compute_case(version, case):
    return compute_values(version, case.encryption_type, **case_kwargs(case))


ALL_CASES = [
    (version, Case(*choice))
    for version in VERSIONS
    for choice in itertools.product(*CASE_CHOICES)
]
ALLOWED_CASES = [
    pytest.param(version, case, id=case_id(version, case))
    for version, case in ALL_CASES
    if case_allowed(version, case)
]
REJECTED_CASES = [
    pytest.param(version, case, id=case_id(version, case))
    for version, case in ALL_CASES
    if not case_allowed(version, case)
]


def expected_rejection(version, case):
    if "ingress" in case.strict and minor(version) < 19:
        return (
            "cilium_encryption_strict_mode turns on strict ingress encryption, which "
            "needs Cilium 1.19 or later, but the target chart version is {0}. Set "
            "ingress to false or install Cilium 1.19 or later.".format(version)
        )
    if "ingress" in case.strict:
        return (
            "Strict ingress encryption (encryption.strictMode.ingress.enabled) "
            'requires WireGuard, but cilium_encryption_type is "ipsec". Set ingress to '
            "false in cilium_encryption_strict_mode or use wireguard."
        )
    return (
        "Strict egress encryption (encryption.strictMode.enabled) with IPsec needs "
        "Cilium 1.19 or later, but the target chart version is {0}. Earlier releases "
        "implement strict mode for WireGuard only. Use wireguard, turn strict mode off "
        "in cilium_encryption_strict_mode, or install Cilium 1.19 or "
        "later.".format(version)
    )


def test_case_table_covers_both_outcomes():
    assert len(ALLOWED_CASES) == 504
    assert len(REJECTED_CASES) == 456


@pytest.mark.parametrize("version, case", ALLOWED_CASES)
def test_computed_keys_exist_upstream(version, case):
    values = compute_case(version, case).values

    invalid = [
        ".".join(path)
        for path in leaf_paths(values)
        if path_rule(version, path) is None
    ]
    assert invalid == []


@pytest.mark.parametrize("version, case", ALLOWED_CASES)
def test_computed_values_match_case(version, case):
    values = compute_case(version, case).values
    encryption = values["encryption"]
    strict = encryption.get("strictMode", {})
    egress = strict.get("egress", {}) if minor(version) >= 19 else strict

    assert encryption["enabled"] is True
    assert encryption["type"] == case.encryption_type
    assert encryption["nodeEncryption"] is case.node_encryption
    assert ("ipsec" in encryption) is (case.encryption_type == "ipsec")
    assert egress.get("enabled", False) is ("egress" in case.strict)
    if minor(version) >= 19 and case.strict != "off":
        assert strict["ingress"] == {"enabled": "ingress" in case.strict}
    for path in TLS_AUTO_PATHS:
        auto = values
        for key in path:
            auto = auto[key]
        assert auto["method"] == case.tls
    assert ("cni" in values) is case.istio
    socket_lb = case.istio and case.kube_proxy is not None
    assert values.get("socketLB", {}).get("hostNamespaceOnly") is (
        True if socket_lb else None
    )


@pytest.mark.parametrize("version, case", REJECTED_CASES)
def test_unsupported_combinations_raise(version, case):
    with pytest.raises(ValuesError) as info:
        compute_case(version, case)
    assert str(info.value) == expected_rejection(version, case)


@pytest.mark.parametrize("version", VERSIONS)
def test_commented_keys_are_the_expected_ones(version):
    used = set()
    for case_version, case in ALL_CASES:
        if case_version == version and case_allowed(version, case):
            for path in leaf_paths(compute_case(version, case).values):
                if path_rule(version, path) == 3:
                    used.add(".".join(path))

    expected = {"socketLB.hostNamespaceOnly"}
    if minor(version) < 18:
        expected.add("kubeProxyReplacement")
    assert used == expected


@pytest.mark.parametrize("version", VERSIONS)
def test_schema_accepts_computed_values(version):
    jsonschema = pytest.importorskip(
        "jsonschema", reason="jsonschema is needed to apply values.schema.json"
    )
    schema = upstream_schema(version)
    defaults = upstream_values(version)
    validator_class = jsonschema.validators.validator_for(
        schema, default=jsonschema.Draft7Validator
    )
    # The schema constrains nothing at the top level but the properties, so validating
    # each changed top-level key against its own subschema is enough, and much faster.
    assert set(schema) == {"$schema", "type", "properties"}

    failures = []
    checked = set()
    for case_version, case in ALL_CASES:
        if case_version != version or not case_allowed(version, case):
            continue
        values = compute_case(version, case).values
        for key in values:
            # Many cases share a subtree, so validate each distinct subtree once.
            fingerprint = (key, json.dumps(values[key], sort_keys=True))
            if fingerprint in checked:
                continue
            checked.add(fingerprint)
            default = {key: defaults[key]} if key in defaults else {}
            merged = merge(default, {key: values[key]})[key]
            subschema = schema["properties"].get(key, {})
            for error in validator_class(subschema).iter_errors(merged):
                failures.append(
                    "{0}: {1}: {2}".format(case_id(version, case), key, error.message)
                )
    assert failures == []


def test_path_rule_rejects_unknown_and_shadowing_paths():
    version = "1.20.0"

    assert path_rule(version, ("encryption", "type")) == 1
    assert (
        path_rule(version, ("hubble", "tls", "auto", "certManagerIssuerRef", "x")) == 2
    )
    assert path_rule(version, ("socketLB", "hostNamespaceOnly")) == 3
    assert path_rule(version, ("encryption", "strictMode", "enabled")) is None
    assert path_rule(version, ("encryption", "ipsec", "encryptedOverlay")) is None
    assert path_rule(version, ("hubble", "tls")) is None
    assert path_rule(version, ("kubeProxyReplacement", "x")) is None


# Facts about the upstream charts that the module relies on


@pytest.mark.parametrize("version", VERSIONS)
def test_encryption_key_table_matches_values_yaml(version):
    free_form = tuple(ENCRYPTION_FREE_FORM)
    upstream = {
        ".".join(path)
        for path in leaf_paths(upstream_values(version)["encryption"])
        if path[0] not in free_form
    }
    table = {
        path
        for path, (first, last) in ENCRYPTION_KEYS.items()
        if first <= minor(version) <= last
    }
    assert table == upstream


@pytest.mark.parametrize("version", VERSIONS)
def test_tls_auto_method_keys_exist(version):
    values = upstream_values(version)
    text = read_text(upstream_path(version, "values.yaml"))

    for path in TLS_AUTO_PATHS:
        auto = values
        for key in path:
            auto = auto[key]
        assert auto["method"] == "helm"
        assert auto["certManagerIssuerRef"] == {}
    assert text.count("# - cronJob:") == 2
    assert text.count("# - certmanager:") == 2


@pytest.mark.parametrize("version", VERSIONS)
def test_kube_proxy_replacement_type(version):
    text = read_text(upstream_path(version, "values.yaml"))
    schema = upstream_schema(version)["properties"]

    assert 'Valid options are "true" or "false".' in text
    if minor(version) >= 18:
        assert upstream_values(version)["kubeProxyReplacement"] == "false"
        assert schema["kubeProxyReplacement"]["type"] == ["string", "boolean"]
    else:
        assert "kubeProxyReplacement" not in upstream_values(version)
        assert ("kubeProxyReplacement",) in commented_keys(version)


@pytest.mark.parametrize("version", VERSIONS)
def test_istio_keys_exist(version):
    values = upstream_values(version)

    assert values["cni"]["exclusive"] is True
    assert values["socketLB"] == {"enabled": False}
    assert ("socketLB", "hostNamespaceOnly") in commented_keys(version)


@pytest.mark.parametrize("version", VERSIONS)
def test_strict_mode_documented_types(version):
    text = read_text(upstream_path(version, "values.yaml"))

    if minor(version) < 19:
        assert "# -- Configure the WireGuard Pod2Pod strict mode." in text
    else:
        assert "# -- Configure the Encryption Pod2Pod strict mode." in text
    if minor(version) == 19:
        assert "only applicable when WireGuard and tunneling are enabled." in text
    if minor(version) == 20:
        assert "# This option requires WireGuard encryption." in text


@pytest.mark.parametrize("version", VERSIONS)
def test_node_encryption_documented_wireguard_only(version):
    text = read_text(upstream_path(version, "values.yaml"))

    assert (
        '# This option is only effective when encryption.type is set to "wireguard".'
        in text
    )


# Computed values


def test_wireguard_values_on_1_20():
    values = compute_values("1.20.0", "wireguard", node_encryption=True).values

    assert values == {
        "encryption": {"enabled": True, "type": "wireguard", "nodeEncryption": True},
        "hubble": {"tls": {"auto": {"method": "cronJob"}}},
        "clustermesh": {"apiserver": {"tls": {"auto": {"method": "cronJob"}}}},
    }


def test_ipsec_values_include_key_options():
    values = compute_values(
        "1.18.12",
        "ipsec",
        ipsec_secret_name="ipsec-keys",
        ipsec_key_file="key",
        ipsec_key_watcher=False,
        ipsec_key_rotation_duration="1h30m",
        extra_values={
            "encryption": {"ipsec": {"secretName": "ipsec-keys", "keyFile": "key"}}
        },
    ).values

    assert values["encryption"]["ipsec"] == {
        "secretName": "ipsec-keys",
        "keyFile": "key",
        "keyWatcher": False,
        "keyRotationDuration": "1h30m",
    }


def test_ipsec_values_leave_key_options_to_chart():
    values = compute_values("1.20.0", "ipsec").values

    assert values["encryption"]["ipsec"] == {
        "secretName": "cilium-ipsec-keys",
        "keyFile": "keys",
    }


def test_wireguard_ignores_ipsec_options():
    values = compute_values(
        "1.20.0", "wireguard", ipsec_secret_name="", ipsec_key_watcher="yes"
    ).values

    assert "ipsec" not in values["encryption"]


@pytest.mark.parametrize("version", ["1.16.19", "1.17.18", "1.18.12"])
def test_strict_mode_before_1_19(version):
    strict_mode = {"enabled": True, "cidr": CIDR, "allow_remote_node_identities": True}
    values = compute_values(version, "wireguard", strict_mode=strict_mode).values

    assert values["encryption"]["strictMode"] == {
        "enabled": True,
        "cidr": CIDR,
        "allowRemoteNodeIdentities": True,
    }


@pytest.mark.parametrize("version", ["1.19.6", "1.20.0"])
def test_strict_mode_from_1_19(version):
    strict_mode = {
        "enabled": True,
        "cidr": CIDR,
        "allow_remote_node_identities": True,
        "ingress": True,
    }
    values = compute_values(version, "wireguard", strict_mode=strict_mode).values

    assert values["encryption"]["strictMode"] == {
        "egress": {"enabled": True, "cidr": CIDR, "allowRemoteNodeIdentities": True},
        "ingress": {"enabled": True},
    }


def test_strict_egress_with_ipsec_on_1_19():
    strict_mode = {"enabled": True, "cidr": CIDR, "allow_remote_node_identities": True}
    computed = compute_values("1.19.6", "ipsec", strict_mode=strict_mode)

    assert computed.values["encryption"]["strictMode"]["egress"]["enabled"] is True
    assert computed.warnings == []


def test_empty_strict_mode_renders_nothing():
    values = compute_values("1.20.0", "wireguard", strict_mode={}).values

    assert "strictMode" not in values["encryption"]


def test_certmanager_sets_issuer_for_both():
    values = compute_values(
        "1.20.0",
        "wireguard",
        tls_auto_method="certmanager",
        tls_cert_manager_issuer=ISSUER,
    ).values

    assert values["hubble"]["tls"]["auto"] == {
        "method": "certmanager",
        "certManagerIssuerRef": ISSUER,
    }
    assert values["clustermesh"]["apiserver"]["tls"]["auto"] == {
        "method": "certmanager",
        "certManagerIssuerRef": ISSUER,
    }


def test_helm_tls_method_with_opt_in():
    computed = compute_values(
        "1.20.0", "wireguard", tls_auto_method="helm", allow_helm_tls_method=True
    )

    assert computed.values["hubble"]["tls"]["auto"]["method"] == "helm"
    assert computed.values["clustermesh"]["apiserver"]["tls"]["auto"]["method"] == (
        "helm"
    )
    assert computed.warnings == [
        "hubble.tls.auto.method is helm, so every run of the role signs new "
        "certificates and changes the release.",
        "clustermesh.apiserver.tls.auto.method is helm, so every run of the role signs "
        "new certificates and changes the release.",
    ]


@pytest.mark.parametrize(
    "extra_values, host_namespace_only",
    [
        ({}, None),
        ({"kubeProxyReplacement": "false"}, None),
        ({"kubeProxyReplacement": False}, None),
        ({"kubeProxyReplacement": "true"}, True),
        ({"kubeProxyReplacement": True}, True),
        ({"socketLB": {"enabled": True}}, True),
        ({"kubeProxyReplacement": True, "socketLB": {"hostNamespaceOnly": True}}, True),
    ],
)
def test_istio_socket_lb_setting(extra_values, host_namespace_only):
    values = compute_values(
        "1.20.0", "wireguard", istio_compatible=True, extra_values=extra_values
    ).values

    assert values["cni"]["exclusive"] is False
    assert values.get("socketLB", {}).get("hostNamespaceOnly") is host_namespace_only


def test_without_istio_keeps_cni_exclusive():
    values = compute_values(
        "1.20.0", "wireguard", extra_values={"kubeProxyReplacement": True}
    ).values

    assert "cni" not in values
    assert "socketLB" not in values


def test_ztunnel_settings_pass_from_1_19():
    extra_values = {"encryption": {"ztunnel": {"ca": {"type": "internal"}}}}
    values = compute_values("1.20.0", "wireguard", extra_values=extra_values).values

    assert values["encryption"]["ztunnel"] == {"ca": {"type": "internal"}}


# Merge semantics


def test_merge_dicts_key_by_key():
    base = {"a": {"b": 1, "c": {"d": 2, "e": 3}}, "f": 4}
    override = {"a": {"c": {"e": 30, "g": 5}}, "h": 6}

    assert merge(base, override) == {
        "a": {"b": 1, "c": {"d": 2, "e": 30, "g": 5}},
        "f": 4,
        "h": 6,
    }


def test_merge_lists_replace():
    base = {"devices": ["eth0", "eth1"], "nested": {"items": [1, 2, 3]}}
    override = {"devices": ["bond0"], "nested": {"items": []}}

    assert merge(base, override) == {"devices": ["bond0"], "nested": {"items": []}}


def test_merge_scalar_and_dict_replace_each_other():
    base = {"a": {"b": 1}, "c": 2}
    override = {"a": "text", "c": {"d": 3}}

    assert merge(base, override) == {"a": "text", "c": {"d": 3}}


def test_merge_keeps_null():
    assert merge({"a": {"b": 1}}, {"a": None}) == {"a": None}


def test_merge_copies_inputs():
    base = {"a": {"b": [1]}}
    override = {"c": {"d": [2]}}
    merged = merge(base, override)
    merged["a"]["b"].append(10)
    merged["c"]["d"].append(20)

    assert base == {"a": {"b": [1]}}
    assert override == {"c": {"d": [2]}}


def test_extra_values_win_key_by_key():
    extra_values = {
        "encryption": {"ipsec": {"keyWatcher": False}},
        "hubble": {
            "tls": {"auto": {"method": "certmanager", "certManagerIssuerRef": ISSUER}}
        },
        "tunnelProtocol": "geneve",
    }
    values = compute_values(
        "1.20.0", "ipsec", ipsec_key_watcher=True, extra_values=extra_values
    ).values

    assert values["encryption"]["ipsec"] == {
        "secretName": "cilium-ipsec-keys",
        "keyFile": "keys",
        "keyWatcher": False,
    }
    assert values["hubble"]["tls"]["auto"] == {
        "method": "certmanager",
        "certManagerIssuerRef": ISSUER,
    }
    assert values["clustermesh"]["apiserver"]["tls"]["auto"] == {"method": "cronJob"}
    assert values["tunnelProtocol"] == "geneve"


def test_compute_does_not_change_inputs():
    extra_values = {"encryption": {"nodeEncryption": True}, "cni": {"chainingMode": ""}}
    strict_mode = {"enabled": True, "cidr": CIDR, "allow_remote_node_identities": True}
    values = compute_values(
        "1.20.0",
        "wireguard",
        strict_mode=strict_mode,
        istio_compatible=True,
        extra_values=extra_values,
    ).values
    values["encryption"]["strictMode"]["egress"]["cidr"] = "192.168.0.0/16"

    assert extra_values == {
        "encryption": {"nodeEncryption": True},
        "cni": {"chainingMode": ""},
    }
    assert strict_mode["cidr"] == CIDR


# Versions


@pytest.mark.parametrize(
    "text, version",
    [
        ("1.20.0", ChartVersion(1, 20, 0)),
        ("v1.19.6", ChartVersion(1, 19, 6)),
        ("1.20.0-rc.1", ChartVersion(1, 20, 0)),
        ("1.16.19+build.7", ChartVersion(1, 16, 19)),
    ],
)
def test_parse_chart_version(text, version):
    assert parse_chart_version(text) == version


def test_chart_version_text():
    assert str(parse_chart_version("v1.19.6")) == "1.19.6"


# Rejected input, with the exact message

NOT_A_VERSION = (
    "cilium_encryption_chart_version {0} is not a Cilium chart version. Set it to an "
    "exact release such as 1.20.0 or v1.20.0, because the Helm values depend on the "
    "version."
)
UNSUPPORTED_VERSION = (
    "Cilium chart version {0} is not supported. Set cilium_encryption_chart_version to "
    "a release from 1.16 to 1.20, the versions this collection supports."
)
INVALID_TYPE = (
    "{0} is invalid. Use ipsec or wireguard in lower case, the two types this "
    "collection supports. The chart installs Cilium without encryption for a "
    "misspelled type."
)
HELM_TLS = (
    "{0}.method helm makes Helm sign new certificates on every render, so every run of "
    "the role changes the release. Use cronJob or certmanager, or set "
    "cilium_encryption_allow_helm_tls_method to true to accept that."
)
REJECTIONS = [
    pytest.param(
        "1.15.19", "wireguard", {}, UNSUPPORTED_VERSION.format("1.15.19"), id="1.15"
    ),
    pytest.param(
        "1.21.0", "wireguard", {}, UNSUPPORTED_VERSION.format("1.21.0"), id="1.21"
    ),
    pytest.param(
        "v2.0.0", "wireguard", {}, UNSUPPORTED_VERSION.format("v2.0.0"), id="2.0"
    ),
    pytest.param(
        "1.20", "wireguard", {}, NOT_A_VERSION.format('"1.20"'), id="version-no-patch"
    ),
    pytest.param("", "wireguard", {}, NOT_A_VERSION.format('""'), id="version-empty"),
    pytest.param(
        "~1.20.0", "wireguard", {}, NOT_A_VERSION.format('"~1.20.0"'), id="range"
    ),
    pytest.param(
        "latest", "wireguard", {}, NOT_A_VERSION.format('"latest"'), id="latest"
    ),
    pytest.param(None, "wireguard", {}, NOT_A_VERSION.format("null"), id="null"),
    pytest.param(1.2, "wireguard", {}, NOT_A_VERSION.format("1.2"), id="float"),
    pytest.param(
        "1.20.0",
        "WireGuard",
        {},
        INVALID_TYPE.format('cilium_encryption_type "WireGuard"'),
        id="type-WireGuard",
    ),
    pytest.param(
        "1.20.0",
        "IPsec",
        {},
        INVALID_TYPE.format('cilium_encryption_type "IPsec"'),
        id="type-IPsec",
    ),
    pytest.param(
        "1.20.0",
        "",
        {},
        INVALID_TYPE.format('cilium_encryption_type ""'),
        id="type-empty",
    ),
    pytest.param(
        "1.20.0",
        "ztunnel",
        {},
        INVALID_TYPE.format('cilium_encryption_type "ztunnel"'),
        id="type-ztunnel",
    ),
    pytest.param(
        "1.20.0",
        "wireguard",
        {"extra_values": {"encryption": {"type": "WireGuard"}}},
        INVALID_TYPE.format(
            'encryption.type "WireGuard" in cilium_encryption_helm_values'
        ),
        id="extra-type-WireGuard",
    ),
    pytest.param(
        "1.20.0",
        "ipsec",
        {"extra_values": {"encryption": {"type": "IPsec"}}},
        INVALID_TYPE.format('encryption.type "IPsec" in cilium_encryption_helm_values'),
        id="extra-type-IPsec",
    ),
    pytest.param(
        "1.20.0",
        "ipsec",
        {"extra_values": {"encryption": {"type": ""}}},
        INVALID_TYPE.format('encryption.type "" in cilium_encryption_helm_values'),
        id="extra-type-empty",
    ),
    pytest.param(
        "1.20.0",
        "wireguard",
        {"extra_values": {"encryption": {"type": "ipsec"}}},
        'encryption.type "ipsec" in cilium_encryption_helm_values differs from '
        'cilium_encryption_type "wireguard". Set the type in cilium_encryption_type '
        "only.",
        id="extra-type-differs",
    ),
    pytest.param(
        "1.20.0",
        "wireguard",
        {"extra_values": {"encryption": {"enabled": False}}},
        "encryption.enabled false in cilium_encryption_helm_values is invalid, because "
        "this role installs Cilium with encryption on only. Remove encryption.enabled "
        "from cilium_encryption_helm_values.",
        id="extra-enabled-false",
    ),
    pytest.param(
        "1.20.0",
        "ipsec",
        {"extra_values": {"encryption": {"ipsec": {"secretName": "other"}}}},
        'encryption.ipsec.secretName "other" in cilium_encryption_helm_values differs '
        'from cilium_encryption_ipsec_secret_name "cilium-ipsec-keys". Set it only in '
        "cilium_encryption_ipsec_secret_name, which the role also uses to create the "
        "IPsec key Secret.",
        id="extra-secret-name-differs",
    ),
    pytest.param(
        "1.20.0",
        "ipsec",
        {"extra_values": {"encryption": {"ipsec": {"keyFile": "other"}}}},
        'encryption.ipsec.keyFile "other" in cilium_encryption_helm_values differs '
        'from cilium_encryption_ipsec_key_file "keys". Set it only in '
        "cilium_encryption_ipsec_key_file, which the role also uses to create the "
        "IPsec key Secret.",
        id="extra-key-file-differs",
    ),
    pytest.param(
        "1.20.0",
        "wireguard",
        {"extra_values": ["encryption"]},
        'cilium_encryption_helm_values ["encryption"] is invalid. Set it to a mapping '
        "of Helm values.",
        id="extra-not-mapping",
    ),
    pytest.param(
        "1.20.0",
        "wireguard",
        {"extra_values": {"encryption": None}},
        "encryption null in cilium_encryption_helm_values is invalid. Set it to a "
        "mapping or leave it out.",
        id="extra-encryption-null",
    ),
    pytest.param(
        "1.20.0",
        "ipsec",
        {"extra_values": {"encryption": {"ipsec": "on"}}},
        'encryption.ipsec "on" in cilium_encryption_helm_values is invalid. Set it to '
        "a mapping.",
        id="extra-ipsec-not-mapping",
    ),
    pytest.param(
        "1.20.0",
        "wireguard",
        {"extra_values": {"encryption": {"nodeEncrpytion": True}}},
        "encryption.nodeEncrpytion in cilium_encryption_helm_values is not a value of "
        "the Cilium 1.20.0 chart, which ignores unknown values. Check the spelling "
        "against the chart's values.yaml.",
        id="extra-unknown-key",
    ),
    pytest.param(
        "1.18.12",
        "wireguard",
        {"extra_values": {"encryption": {"ztunnel": {"caAddress": "x"}}}},
        "encryption.ztunnel.caAddress in cilium_encryption_helm_values is not a value "
        "of the Cilium 1.18.12 chart, which ignores unknown values. Check the spelling "
        "against the chart's values.yaml.",
        id="extra-ztunnel-before-1.19",
    ),
    pytest.param(
        "1.20.0",
        "wireguard",
        {"extra_values": {"kubeProxyReplacement": "strict"}},
        'kubeProxyReplacement "strict" in cilium_encryption_helm_values is invalid for '
        "Cilium 1.20.0. Set it to true or false.",
        id="kube-proxy-replacement-strict",
    ),
    pytest.param(
        "1.20.0",
        "wireguard",
        {"extra_values": {"kubeProxyReplacement": 1}},
        "kubeProxyReplacement 1 in cilium_encryption_helm_values is invalid for Cilium "
        "1.20.0. Set it to true or false.",
        id="kube-proxy-replacement-number",
    ),
    pytest.param(
        "1.20.0",
        "wireguard",
        {"node_encryption": "yes"},
        'cilium_encryption_node_encryption "yes" is invalid. Set it to true or false.',
        id="node-encryption-not-bool",
    ),
    pytest.param(
        "1.20.0",
        "wireguard",
        {"istio_compatible": "false"},
        'cilium_encryption_istio_compatible "false" is invalid. Set it to true or '
        "false.",
        id="istio-not-bool",
    ),
    pytest.param(
        "1.20.0",
        "wireguard",
        {"allow_helm_tls_method": None},
        "cilium_encryption_allow_helm_tls_method null is invalid. Set it to true or "
        "false.",
        id="allow-helm-not-bool",
    ),
    pytest.param(
        "1.20.0",
        "ipsec",
        {"ipsec_secret_name": ""},
        'cilium_encryption_ipsec_secret_name "" is invalid. Set it to a non-empty '
        "string.",
        id="ipsec-secret-name-empty",
    ),
    pytest.param(
        "1.20.0",
        "ipsec",
        {"ipsec_key_file": None},
        "cilium_encryption_ipsec_key_file null is invalid. Set it to a non-empty "
        "string.",
        id="ipsec-key-file-null",
    ),
    pytest.param(
        "1.20.0",
        "ipsec",
        {"ipsec_key_watcher": "true"},
        'cilium_encryption_ipsec_key_watcher "true" is invalid. Set it to true or '
        "false.",
        id="ipsec-key-watcher-string",
    ),
    pytest.param(
        "1.20.0",
        "ipsec",
        {"ipsec_key_rotation_duration": "5"},
        'cilium_encryption_ipsec_key_rotation_duration "5" is invalid. Set it to a '
        "duration with a unit, such as 5m or 1h30m.",
        id="ipsec-rotation-no-unit",
    ),
    pytest.param(
        "1.20.0",
        "ipsec",
        {"ipsec_key_rotation_duration": 300},
        "cilium_encryption_ipsec_key_rotation_duration 300 is invalid. Set it to a "
        "duration with a unit, such as 5m or 1h30m.",
        id="ipsec-rotation-number",
    ),
]

REMOVED_KEY_REJECTIONS = [
    pytest.param(
        "1.16.19",
        {"keyFile": "keys"},
        "encryption.keyFile in cilium_encryption_helm_values was removed in Cilium "
        "1.16, and the 1.16.19 chart fails on it. Use encryption.ipsec.keyFile "
        "instead.",
        id="1.16-keyFile",
    ),
    pytest.param(
        "1.18.12",
        {"mountPath": "/etc/ipsec"},
        "encryption.mountPath in cilium_encryption_helm_values was removed in Cilium "
        "1.16, and the 1.18.12 chart fails on it. Use encryption.ipsec.mountPath "
        "instead.",
        id="1.18-mountPath",
    ),
    pytest.param(
        "1.20.0",
        {"secretName": "cilium-ipsec-keys"},
        "encryption.secretName in cilium_encryption_helm_values was removed in Cilium "
        "1.16, and the 1.20.0 chart fails on it. Use encryption.ipsec.secretName "
        "instead.",
        id="1.20-secretName",
    ),
    pytest.param(
        "1.19.6",
        {"interface": "eth0"},
        "encryption.interface in cilium_encryption_helm_values was removed in Cilium "
        "1.16, and the 1.19.6 chart fails on it. Use encryption.ipsec.interface "
        "instead.",
        id="1.19-interface",
    ),
    pytest.param(
        "1.20.0",
        {"interface": "eth0"},
        "encryption.interface in cilium_encryption_helm_values was removed in Cilium "
        "1.16, and the 1.20.0 chart fails on it. Use devices instead.",
        id="1.20-interface",
    ),
    pytest.param(
        "1.17.18",
        {"wireguard": {"userspaceFallback": True}},
        "encryption.wireguard.userspaceFallback in cilium_encryption_helm_values was "
        "removed in Cilium 1.17, so the 1.17.18 chart ignores it. Remove it, because "
        "Cilium 1.17 and later use only the WireGuard module of the kernel (Linux 5.6 "
        "or later).",
        id="1.17-userspaceFallback",
    ),
    pytest.param(
        "1.20.0",
        {"wireguard": {"userspaceFallback": False}},
        "encryption.wireguard.userspaceFallback in cilium_encryption_helm_values was "
        "removed in Cilium 1.17, so the 1.20.0 chart ignores it. Remove it, because "
        "Cilium 1.17 and later use only the WireGuard module of the kernel (Linux 5.6 "
        "or later).",
        id="1.20-userspaceFallback",
    ),
    pytest.param(
        "1.20.0",
        {"ipsec": {"encryptedOverlay": True}},
        "encryption.ipsec.encryptedOverlay in cilium_encryption_helm_values was "
        "removed in Cilium 1.20, so the 1.20.0 chart ignores it. Remove it, because "
        "IPsec encrypts after overlay encapsulation from Cilium 1.18 on.",
        id="1.20-encryptedOverlay",
    ),
    pytest.param(
        "1.20.0",
        {"ipsec": {"interface": "eth0"}},
        "encryption.ipsec.interface in cilium_encryption_helm_values has no effect "
        "from Cilium 1.20, because the 1.20.0 chart no longer renders it. Use devices "
        "instead.",
        id="1.20-ipsec-interface",
    ),
    pytest.param(
        "1.20.0",
        {"strictMode": {"enabled": True}},
        "encryption.strictMode.enabled in cilium_encryption_helm_values was removed in "
        "Cilium 1.20, so the 1.20.0 chart ignores it and strict mode would be off. Use "
        "the enabled option of cilium_encryption_strict_mode or "
        "encryption.strictMode.egress.enabled instead.",
        id="1.20-strictMode-enabled",
    ),
    pytest.param(
        "1.20.0",
        {"strictMode": {"cidr": CIDR}},
        "encryption.strictMode.cidr in cilium_encryption_helm_values was removed in "
        "Cilium 1.20, so the 1.20.0 chart ignores it and strict mode would be off. Use "
        "the cidr option of cilium_encryption_strict_mode or "
        "encryption.strictMode.egress.cidr instead.",
        id="1.20-strictMode-cidr",
    ),
    pytest.param(
        "1.20.0",
        {"strictMode": {"allowRemoteNodeIdentities": True}},
        "encryption.strictMode.allowRemoteNodeIdentities in "
        "cilium_encryption_helm_values was removed in Cilium 1.20, so the 1.20.0 chart "
        "ignores it and strict mode would be off. Use the allow_remote_node_identities "
        "option of cilium_encryption_strict_mode or "
        "encryption.strictMode.egress.allowRemoteNodeIdentities instead.",
        id="1.20-strictMode-allowRemoteNodeIdentities",
    ),
    pytest.param(
        "1.18.12",
        {"strictMode": {"egress": {"enabled": True, "cidr": CIDR}}},
        "encryption.strictMode.egress.enabled in cilium_encryption_helm_values does "
        "not exist before Cilium 1.19, so the 1.18.12 chart ignores it. Use "
        "cilium_encryption_strict_mode, which renders encryption.strictMode.enabled, "
        "cidr and allowRemoteNodeIdentities for this version.",
        id="1.18-strictMode-egress",
    ),
    pytest.param(
        "1.16.19",
        {"strictMode": {"ingress": {"enabled": True}}},
        "encryption.strictMode.ingress.enabled in cilium_encryption_helm_values does "
        "not exist before Cilium 1.19, so the 1.16.19 chart ignores it. Strict ingress "
        "encryption needs Cilium 1.19 or later, so remove it or install Cilium 1.19 or "
        "later.",
        id="1.16-strictMode-ingress",
    ),
]


@pytest.mark.parametrize("version, encryption_type, kwargs, message", REJECTIONS)
def test_invalid_input_raises(version, encryption_type, kwargs, message):
    with pytest.raises(ValuesError) as info:
        compute_values(version, encryption_type, **kwargs)
    assert str(info.value) == message


@pytest.mark.parametrize("version, encryption, message", REMOVED_KEY_REJECTIONS)
def test_removed_key_in_extra_values_raises(version, encryption, message):
    with pytest.raises(ValuesError) as info:
        compute_values(version, "ipsec", extra_values={"encryption": encryption})
    assert str(info.value) == message


STRICT_REJECTIONS = [
    pytest.param(
        "1.20.0",
        "ipsec",
        {"strict_mode": {"enabled": True, "cidr": CIDR, "ingress": True}},
        "Strict ingress encryption (encryption.strictMode.ingress.enabled) requires "
        'WireGuard, but cilium_encryption_type is "ipsec". Set ingress to false in '
        "cilium_encryption_strict_mode or use wireguard.",
        id="ingress-ipsec",
    ),
    pytest.param(
        "1.19.6",
        "ipsec",
        {
            "extra_values": {
                "encryption": {"strictMode": {"ingress": {"enabled": True}}}
            }
        },
        "Strict ingress encryption (encryption.strictMode.ingress.enabled) requires "
        'WireGuard, but cilium_encryption_type is "ipsec". Set ingress to false in '
        "cilium_encryption_strict_mode or use wireguard.",
        id="ingress-ipsec-extra",
    ),
    pytest.param(
        "1.18.12",
        "wireguard",
        {"strict_mode": {"ingress": True}},
        "cilium_encryption_strict_mode turns on strict ingress encryption, which needs "
        "Cilium 1.19 or later, but the target chart version is 1.18.12. Set ingress to "
        "false or install Cilium 1.19 or later.",
        id="ingress-before-1.19",
    ),
    pytest.param(
        "1.17.18",
        "ipsec",
        {"extra_values": {"encryption": {"strictMode": {"enabled": True}}}},
        "Strict egress encryption (encryption.strictMode.enabled) with IPsec needs "
        "Cilium 1.19 or later, but the target chart version is 1.17.18. Earlier "
        "releases implement strict mode for WireGuard only. Use wireguard, turn strict "
        "mode off in cilium_encryption_strict_mode, or install Cilium 1.19 or later.",
        id="egress-ipsec-extra-before-1.19",
    ),
    pytest.param(
        "1.20.0",
        "wireguard",
        {"strict_mode": {"enabled": True}},
        "Strict egress encryption is on but encryption.strictMode.egress.cidr is "
        "empty. Set cidr in cilium_encryption_strict_mode to the cluster's IPv4 pod "
        "CIDR, for example 10.0.0.0/8.",
        id="egress-no-cidr",
    ),
    pytest.param(
        "1.18.12",
        "wireguard",
        {"strict_mode": {"enabled": True, "cidr": ""}},
        "Strict egress encryption is on but encryption.strictMode.cidr is empty. Set "
        "cidr in cilium_encryption_strict_mode to the cluster's IPv4 pod CIDR, for "
        "example 10.0.0.0/8.",
        id="egress-no-cidr-1.18",
    ),
    pytest.param(
        "1.19.6",
        "wireguard",
        {"extra_values": {"encryption": {"strictMode": {"egress": {"enabled": True}}}}},
        "Strict egress encryption is on but encryption.strictMode.egress.cidr is "
        "empty. Set cidr in cilium_encryption_strict_mode to the cluster's IPv4 pod "
        "CIDR, for example 10.0.0.0/8.",
        id="egress-no-cidr-extra",
    ),
    pytest.param(
        "1.20.0",
        "wireguard",
        {"strict_mode": {"enabled": True, "cidr": "10.0.0.0/33"}},
        'encryption.strictMode.egress.cidr "10.0.0.0/33" is not an IPv4 CIDR. Set '
        "cidr in cilium_encryption_strict_mode to the cluster's IPv4 pod CIDR, for "
        "example 10.0.0.0/8, because strict mode covers IPv4 traffic only.",
        id="egress-bad-cidr",
    ),
    pytest.param(
        "1.20.0",
        "wireguard",
        {"strict_mode": {"enabled": True, "cidr": "fd00::/64"}},
        'encryption.strictMode.egress.cidr "fd00::/64" is not an IPv4 CIDR. Set cidr '
        "in cilium_encryption_strict_mode to the cluster's IPv4 pod CIDR, for example "
        "10.0.0.0/8, because strict mode covers IPv4 traffic only.",
        id="egress-ipv6-cidr",
    ),
    pytest.param(
        "1.20.0",
        "wireguard",
        {"strict_mode": {"egress": True}},
        'cilium_encryption_strict_mode has the unknown key "egress". Use only the keys '
        "enabled, cidr, allow_remote_node_identities and ingress.",
        id="strict-unknown-key",
    ),
    pytest.param(
        "1.20.0",
        "wireguard",
        {"strict_mode": {"enabled": "yes"}},
        'cilium_encryption_strict_mode.enabled "yes" is invalid. Set it to true or '
        "false.",
        id="strict-enabled-not-bool",
    ),
    pytest.param(
        "1.20.0",
        "wireguard",
        {"strict_mode": {"cidr": 10}},
        "cilium_encryption_strict_mode.cidr 10 is invalid. Set it to an IPv4 CIDR such "
        "as 10.0.0.0/8.",
        id="strict-cidr-not-string",
    ),
    pytest.param(
        "1.20.0",
        "wireguard",
        {"strict_mode": "on"},
        'cilium_encryption_strict_mode "on" is invalid. Set it to a mapping with the '
        "keys enabled, cidr, allow_remote_node_identities and ingress.",
        id="strict-not-mapping",
    ),
]


@pytest.mark.parametrize("version, encryption_type, kwargs, message", STRICT_REJECTIONS)
def test_invalid_strict_mode_raises(version, encryption_type, kwargs, message):
    with pytest.raises(ValuesError) as info:
        compute_values(version, encryption_type, **kwargs)
    assert str(info.value) == message


TLS_AND_ISTIO_REJECTIONS = [
    pytest.param(
        {"tls_auto_method": "helm"},
        HELM_TLS.format("hubble.tls.auto"),
        id="helm-without-opt-in",
    ),
    pytest.param(
        {
            "extra_values": {
                "clustermesh": {"apiserver": {"tls": {"auto": {"method": "helm"}}}}
            }
        },
        HELM_TLS.format("clustermesh.apiserver.tls.auto"),
        id="helm-in-extra-values",
    ),
    pytest.param(
        {"tls_auto_method": "cronjob"},
        'cilium_encryption_tls_auto_method "cronjob" is invalid. Use cronJob or '
        "certmanager, with this spelling.",
        id="method-lower-case",
    ),
    pytest.param(
        {"extra_values": {"hubble": {"tls": {"auto": {"method": "CronJob"}}}}},
        'hubble.tls.auto.method "CronJob" is invalid. Use cronJob or certmanager, with '
        "this spelling.",
        id="method-typo-in-extra-values",
    ),
    pytest.param(
        {"tls_auto_method": "certmanager"},
        "cilium_encryption_tls_cert_manager_issuer null is invalid. Set it to the "
        "cert-manager issuer reference, a mapping with name and optionally kind and "
        "group, for example {kind: ClusterIssuer, name: ca-issuer}.",
        id="certmanager-without-issuer",
    ),
    pytest.param(
        {
            "tls_auto_method": "certmanager",
            "tls_cert_manager_issuer": {"kind": "ClusterIssuer"},
        },
        'cilium_encryption_tls_cert_manager_issuer {"kind": "ClusterIssuer"} is '
        "invalid. Set it to the cert-manager issuer reference, a mapping with name and "
        "optionally kind and group, for example {kind: ClusterIssuer, name: "
        "ca-issuer}.",
        id="certmanager-issuer-without-name",
    ),
    pytest.param(
        {"extra_values": {"hubble": {"tls": {"auto": {"method": "certmanager"}}}}},
        "hubble.tls.auto.method is certmanager but "
        "hubble.tls.auto.certManagerIssuerRef is empty. Set "
        "cilium_encryption_tls_cert_manager_issuer to the cert-manager issuer, for "
        "example {kind: ClusterIssuer, name: ca-issuer}.",
        id="certmanager-in-extra-values-without-issuer",
    ),
    pytest.param(
        {"istio_compatible": True, "extra_values": {"cni": {"exclusive": True}}},
        "cni.exclusive true in cilium_encryption_helm_values conflicts with "
        "cilium_encryption_istio_compatible, because Cilium would then rename the "
        "Istio CNI configuration. Remove cni.exclusive from "
        "cilium_encryption_helm_values or set cilium_encryption_istio_compatible to "
        "false.",
        id="istio-cni-exclusive",
    ),
    pytest.param(
        {
            "istio_compatible": True,
            "extra_values": {
                "kubeProxyReplacement": "true",
                "socketLB": {"hostNamespaceOnly": False},
            },
        },
        "socketLB.hostNamespaceOnly false in cilium_encryption_helm_values conflicts "
        "with cilium_encryption_istio_compatible, because socket load-balancing inside "
        "pods bypasses the Istio sidecars. Remove socketLB.hostNamespaceOnly from "
        "cilium_encryption_helm_values or set cilium_encryption_istio_compatible to "
        "false.",
        id="istio-socket-lb",
    ),
]


@pytest.mark.parametrize("kwargs, message", TLS_AND_ISTIO_REJECTIONS)
def test_invalid_tls_or_istio_raises(kwargs, message):
    with pytest.raises(ValuesError) as info:
        compute_values("1.20.0", "wireguard", **kwargs)
    assert str(info.value) == message


# Warnings

WARNINGS = [
    pytest.param("1.20.0", "wireguard", {}, [], id="none"),
    pytest.param(
        "1.20.0",
        "ipsec",
        {"node_encryption": True},
        [
            "encryption.nodeEncryption has no effect with IPsec, because Cilium "
            "encrypts node-to-node traffic with WireGuard only. Set "
            "cilium_encryption_node_encryption to false or use wireguard."
        ],
        id="node-encryption-ipsec",
    ),
    pytest.param(
        "1.19.6",
        "wireguard",
        {
            "extra_values": {
                "encryption": {
                    "strictMode": {
                        "enabled": True,
                        "cidr": CIDR,
                        "allowRemoteNodeIdentities": True,
                    }
                }
            }
        },
        [
            "encryption.strictMode.enabled in cilium_encryption_helm_values is "
            "deprecated in Cilium 1.19 and removed in 1.20. Use the enabled option of "
            "cilium_encryption_strict_mode or encryption.strictMode.egress.enabled "
            "instead.",
            "encryption.strictMode.cidr in cilium_encryption_helm_values is deprecated "
            "in Cilium 1.19 and removed in 1.20. Use the cidr option of "
            "cilium_encryption_strict_mode or encryption.strictMode.egress.cidr "
            "instead.",
            "encryption.strictMode.allowRemoteNodeIdentities in "
            "cilium_encryption_helm_values is deprecated in Cilium 1.19 and removed in "
            "1.20. Use the allow_remote_node_identities option of "
            "cilium_encryption_strict_mode or "
            "encryption.strictMode.egress.allowRemoteNodeIdentities instead.",
        ],
        id="old-strict-keys-1.19",
    ),
    pytest.param(
        "1.18.12",
        "ipsec",
        {"extra_values": {"encryption": {"ipsec": {"encryptedOverlay": True}}}},
        [
            "encryption.ipsec.encryptedOverlay in cilium_encryption_helm_values has no "
            "effect from Cilium 1.18, because IPsec always encrypts after overlay "
            "encapsulation. Remove it."
        ],
        id="encrypted-overlay-1.18",
    ),
    pytest.param(
        "1.17.18",
        "ipsec",
        {"extra_values": {"encryption": {"ipsec": {"encryptedOverlay": True}}}},
        [],
        id="encrypted-overlay-1.17",
    ),
    pytest.param(
        "1.16.19",
        "wireguard",
        {"extra_values": {"encryption": {"wireguard": {"userspaceFallback": True}}}},
        [
            "encryption.wireguard.userspaceFallback in cilium_encryption_helm_values "
            "is deprecated in Cilium 1.16 and removed in 1.17. Remove it before "
            "upgrading."
        ],
        id="userspace-fallback-1.16",
    ),
    pytest.param(
        "1.20.0",
        "wireguard",
        {"strict_mode": {"enabled": True, "cidr": CIDR}},
        [
            "encryption.strictMode.egress.allowRemoteNodeIdentities is false while "
            "routingMode is not native. The chart documents it as required with "
            "tunneling, so set allow_remote_node_identities in "
            "cilium_encryption_strict_mode to true."
        ],
        id="strict-tunnel-without-remote-node-identities",
    ),
    pytest.param(
        "1.20.0",
        "wireguard",
        {
            "strict_mode": {"enabled": True, "cidr": CIDR},
            "extra_values": {"routingMode": "native"},
        },
        [],
        id="strict-native-without-remote-node-identities",
    ),
    pytest.param(
        "1.19.6",
        "wireguard",
        {"strict_mode": {"ingress": True}, "extra_values": {"routingMode": "native"}},
        [
            "Cilium 1.19 applies strict ingress encryption only with tunneling, but "
            "routingMode is native. Use Cilium 1.20 or tunnel routing."
        ],
        id="ingress-native-1.19",
    ),
    pytest.param(
        "1.20.0",
        "wireguard",
        {"strict_mode": {"ingress": True}, "extra_values": {"routingMode": "native"}},
        [],
        id="ingress-native-1.20",
    ),
]


@pytest.mark.parametrize("version, encryption_type, kwargs, warnings", WARNINGS)
def test_warnings(version, encryption_type, kwargs, warnings):
    computed = compute_values(version, encryption_type, **kwargs)
    assert computed.warnings == warnings


# The filter plugin


def test_filter_is_registered():
    assert FilterModule().filters() == {"cilium_values": cilium_values}


def test_filter_returns_values():
    values = cilium_values("v1.19.6", "wireguard", node_encryption=True)

    assert values["encryption"] == {
        "enabled": True,
        "type": "wireguard",
        "nodeEncryption": True,
    }
    assert values["hubble"]["tls"]["auto"]["method"] == "cronJob"


def test_filter_raises_filter_error():
    with pytest.raises(AnsibleFilterError) as info:
        cilium_values("1.20.0", "WireGuard")
    assert str(info.value) == INVALID_TYPE.format('cilium_encryption_type "WireGuard"')


def test_filter_shows_warnings(capsys):
    values = cilium_values("1.20.0", "ipsec", node_encryption=True)
    stderr = capsys.readouterr().err

    assert values["encryption"]["nodeEncryption"] is True
    assert (
        "[WARNING]: encryption.nodeEncryption has no effect with IPsec, because Cilium "
        "encrypts node-to-node traffic with WireGuard only." in stderr
    )
