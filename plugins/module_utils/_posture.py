# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kubecrypt maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Evaluate the Cilium side of a cluster's encryption posture.

Every function here works on plain dicts and strings as the Kubernetes API returns them
(ConfigMap, Secret, Node, CiliumNode, Pod) and on the text the agents print, so the checks are
unit-tested without a cluster. The module reads the objects, runs the agent commands and hands
the results to evaluate(). This file does no I/O, and nothing it returns contains key material.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import binascii
import posixpath
import re

from ansible_collections.kubecrypt.pod_encryption.plugins.module_utils._cilium_dbg import (
    OutputFormatError,
    parse_encrypt_status,
    parse_status,
    version_from_image,
)
from ansible_collections.kubecrypt.pod_encryption.plugins.module_utils._ipsec_key import (
    KeyLineError,
    parse_key_line,
)

CONFIGMAP_NAME = "cilium-config"
AGENT_LABEL_SELECTOR = "k8s-app=cilium"
AGENT_CONTAINER = "cilium-agent"
DEFAULT_SECRET_NAME = "cilium-ipsec-keys"
DEFAULT_DATA_KEY = "keys"
KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node"
WIREGUARD_KEY_ANNOTATION = "network.cilium.io/wg-pub-key"
EXPECTED_TYPES = ("ipsec", "wireguard")
EXEC_CHOICES = ("auto", "always", "never")
EXECUTED = "exec'd"
# A sequence number past this share of its limit fails the check, early enough to rotate
# before the kernel drops packets with XfrmOutStateSeqError at the limit.
SEQUENCE_LIMIT_RATIO = 0.9
# WireGuard public keys are Curve25519 keys: 32 bytes, 44 characters in base64.
WIREGUARD_KEY_BYTES = 32
# A string shorter than this is not added to the strings Ansible masks, because masking a
# short word (an SPI, "128") would garble unrelated output.
MIN_MASKED_LENGTH = 8

# The cilium-config keys that describe encryption, in the order the result lists them. The
# strict-mode keys changed names in Cilium 1.19, so both generations are read.
CONFIG_KEYS = (
    "enable-ipsec",
    "enable-wireguard",
    "enable-ztunnel",
    "encrypt-node",
    "node-encryption-opt-out-labels",
    "ipsec-key-file",
    "enable-ipsec-key-watcher",
    "ipsec-key-rotation-duration",
    "enable-ipsec-encrypted-overlay",
    "encrypt-interface",
    "wireguard-persistent-keepalive",
    "enable-wireguard-userspace-fallback",
    "enable-encryption-strict-mode",
    "encryption-strict-mode-cidr",
    "encryption-strict-mode-allow-remote-node-identities",
    "enable-encryption-strict-mode-egress",
    "encryption-strict-egress-cidr",
    "encryption-strict-egress-allow-remote-node-identities",
    "enable-encryption-strict-mode-ingress",
)

_SPI_PREFIX = re.compile(r"\A([0-9]+)\+?(?: |\Z)")
_HEX_WORD = re.compile(r"\A(?:0[xX])?[0-9a-fA-F]+\Z")


# Reading the objects ---------------------------------------------------------------------


def read_config(configmap):
    """Return the encryption keys of cilium-config's data, or None when the ConfigMap is missing."""
    if configmap is None:
        return None
    data = configmap.get("data") or {}
    return dict((key, data[key]) for key in CONFIG_KEYS if key in data)


def encryption_mode(config):
    """Return the mode that cilium-config turns on: ipsec, wireguard, ztunnel, disabled or conflict.

    ``conflict`` means both IPsec and WireGuard are on, which the agent refuses to start with.
    None means the ConfigMap is missing.
    """
    if config is None:
        return None
    ipsec = _is_true(config.get("enable-ipsec"))
    wireguard = _is_true(config.get("enable-wireguard"))
    if ipsec and wireguard:
        return "conflict"
    if ipsec:
        return "ipsec"
    if wireguard:
        return "wireguard"
    if _is_true(config.get("enable-ztunnel")):
        return "ztunnel"
    return "disabled"


def checked_type(mode, expected_type=None):
    """Return the encryption type the checks test for, or None when there is none to test."""
    if expected_type:
        return expected_type
    return mode if mode in EXPECTED_TYPES else None


def secret_data_key(config, requested=None):
    """Return the Secret data key the agents read: ``requested``, else the key file's name."""
    if requested:
        return requested
    key_file = (config or {}).get("ipsec-key-file")
    if key_file:
        return posixpath.basename(key_file.rstrip("/")) or DEFAULT_DATA_KEY
    return DEFAULT_DATA_KEY


def describe_ipsec_secret(secret, name, namespace, data_key):
    """Describe the IPsec key Secret by metadata only, and list the strings to mask.

    Return ``(summary, masked)``. ``summary`` contains ``name``, ``namespace``, ``data_key``,
    ``found``, ``problem`` (why the key is unusable, or None) and, when the key parses, its
    ``spi``, ``per_tunnel``, ``algorithm``, ``key_bits``, ``icv_bits`` and ``fingerprint``.
    When the key line does not parse, ``spi`` is still read from its first field if that is a
    valid SPI. ``masked`` is the set of secret strings that Ansible must mask in all output.
    """
    summary = {
        "name": name,
        "namespace": namespace,
        "data_key": data_key,
        "found": secret is not None,
        "problem": None,
        "spi": None,
        "per_tunnel": None,
        "algorithm": None,
        "key_bits": None,
        "icv_bits": None,
        "fingerprint": None,
    }
    masked = set()
    if secret is None:
        summary["problem"] = (
            "Secret {0}/{1} not found. The agents cannot start IPsec without it: create it "
            "with kubecrypt.pod_encryption.cilium_ipsec_key.".format(namespace, name)
        )
        return summary, masked

    data = secret.get("data") or {}
    if data_key not in data:
        summary["problem"] = (
            "Secret {0}/{1} has no data key {2!r} (data keys present: {3}). Set "
            "ipsec_secret_data_key to the key that the agents read.".format(
                namespace, name, data_key, ", ".join(sorted(data)) or "none"
            )
        )
        return summary, masked

    encoded = data[data_key] or ""
    masked.add(encoded)
    try:
        line = base64.b64decode(encoded).decode("utf-8")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        summary["problem"] = (
            "Secret {0}/{1} data key {2!r} is not base64-encoded UTF-8 text.".format(
                namespace, name, data_key
            )
        )
        return summary, _long_strings(masked)
    masked.update(_secret_words(line))

    try:
        key = parse_key_line(line)
    except KeyLineError as exc:
        summary["problem"] = "The key in Secret {0}/{1} is invalid: {2}".format(
            namespace, name, exc
        )
        summary["spi"] = _leading_spi(line)
        return summary, _long_strings(masked)

    summary.update(key.describe())
    masked.update({key.key_hex, key.key_hex.upper(), key.line()})
    return summary, _long_strings(masked)


def agent_pods_by_node(pods):
    """Map each node name to its agent pod, preferring a Running pod, then the newest one."""
    chosen = {}
    for pod in pods:
        node = (pod.get("spec") or {}).get("nodeName")
        if not node:
            continue
        current = chosen.get(node)
        if current is None or _pod_rank(pod) > _pod_rank(current):
            chosen[node] = pod
    return chosen


def agent_image(pod):
    """Return the image of the pod's cilium-agent container, or None."""
    for container in (pod.get("spec") or {}).get("containers") or []:
        if container.get("name") == AGENT_CONTAINER:
            return container.get("image")
    return None


def agent_version(pod):
    """Return the Cilium version tuple from the agent image tag, or None."""
    return version_from_image(agent_image(pod))


def is_kwok_node(node):
    """Return whether kwok simulates this node, so that no kubelet or agent runs on it."""
    annotations = (node.get("metadata") or {}).get("annotations") or {}
    return annotations.get(KWOK_NODE_ANNOTATION) == "fake"


def exec_skip_reason(node, pod, exec_agents):
    """Return why the module does not exec into the node's agent, or None when it does."""
    if exec_agents == "never":
        return "exec_agents is never"
    if pod is None:
        return "no Cilium agent pod runs on this node"
    if exec_agents == "always":
        return None
    if is_kwok_node(node):
        return "kwok simulates this node, so no agent process runs there"
    phase = (pod.get("status") or {}).get("phase")
    if phase != "Running":
        return "agent pod {0} is {1}".format(_name(pod), phase or "in an unknown phase")
    return None


# Evaluating the posture ------------------------------------------------------------------


def evaluate(snapshot, expected_type=None, exec_agents="auto"):
    """Evaluate the posture in ``snapshot`` and return the module's result without ``changed``.

    ``snapshot`` is a dict with:

    - ``namespace``: Cilium's namespace;
    - ``config``: the result of read_config (None when cilium-config is missing);
    - ``secret``: the summary from describe_ipsec_secret, or None when IPsec is not in use;
    - ``nodes``: the Node objects;
    - ``ciliumnodes``: the CiliumNode objects, or None when the API does not serve the kind;
    - ``agents``: node name to a dict with ``pod`` (the Pod object or None),
      ``skip_reason`` (from exec_skip_reason), ``exec_error`` (why the commands failed, or
      None) and ``status`` and ``encrypt_status`` (the texts the commands printed).
    """
    config = snapshot.get("config")
    mode = encryption_mode(config)
    checked_mode = checked_type(mode, expected_type)
    nodes = sorted(snapshot.get("nodes") or [], key=_name)
    node_names = set(_name(node) for node in nodes)
    ciliumnodes = snapshot.get("ciliumnodes")
    by_name = dict((_name(item), item) for item in ciliumnodes or [])
    considered = dict(
        (name, item) for name, item in by_name.items() if name in node_names
    )
    secret = snapshot.get("secret") if checked_mode == "ipsec" else None

    context = {
        "namespace": snapshot.get("namespace"),
        "config": config or {},
        "checked_mode": checked_mode,
        "secret": secret,
        "ciliumnode_count": len(considered),
        "exec_agents": exec_agents,
    }
    cluster_checks = _cluster_checks(
        snapshot, mode, expected_type, considered, ciliumnodes
    )
    reports = [
        _node_report(
            node,
            considered.get(_name(node)),
            snapshot.get("agents", {}).get(_name(node)),
            context,
        )
        for node in nodes
    ]

    checks = list(cluster_checks)
    for report in reports:
        checks.extend(report["checks"])
    failed = [check for check in checks if not check["passed"]]
    result = {
        "mode": mode,
        "expected_type": expected_type,
        "config": config,
        "ipsec_key": secret,
        "ipsec_rotation_in_progress": _rotation_in_progress(
            checked_mode, considered, reports
        ),
        "nodes": reports,
        "ignored_ciliumnodes": sorted(
            name for name in by_name if name not in node_names
        ),
        "checks": checks,
        "failed_checks": failed,
        "ok": not failed,
    }
    result["summary"] = summarise(result, cluster_checks)
    return result


def summarise(result, cluster_checks):
    """Build the summary: one line for the cluster, then one line per node."""
    mode = result["mode"] or "unknown"
    parts = ["cluster: cilium-config mode {0}".format(mode)]
    if result["expected_type"]:
        parts[0] += " (expected {0})".format(result["expected_type"])
    secret = result["ipsec_key"]
    if secret is not None:
        parts.append(
            "Secret {0}/{1} SPI {2}".format(
                secret["namespace"], secret["name"], _text(secret["spi"])
            )
        )
    if result["ipsec_rotation_in_progress"]:
        parts.append("key rotation in progress")
    parts.append(_describe_checks(cluster_checks))
    lines = [", ".join(parts)]

    for report in result["nodes"]:
        node_parts = [report["name"] + ":"]
        if result["ipsec_key"] is not None:
            node_parts.append("SPI {0},".format(_text(report["spi"])))
        elif report["wireguard_public_key"]:
            node_parts.append(
                "WireGuard key {0}...,".format(report["wireguard_public_key"][:8])
            )
        node_parts.append(report["exec_status"] + ",")
        node_parts.append(_describe_checks(report["checks"]))
        lines.append(" ".join(node_parts))
    return lines


def _cluster_checks(snapshot, mode, expected_type, considered, ciliumnodes):
    namespace = snapshot.get("namespace")
    checks = []
    if snapshot.get("config") is None:
        checks.append(
            _check(
                "cilium_config",
                None,
                False,
                "ConfigMap {0}/{1} not found: Cilium is not installed in namespace {0}. Set "
                "namespace to the namespace Cilium runs in.".format(
                    namespace, CONFIGMAP_NAME
                ),
            )
        )
        return checks
    checks.append(
        _check(
            "cilium_config",
            None,
            True,
            "ConfigMap {0}/{1} found.".format(namespace, CONFIGMAP_NAME),
        )
    )
    checks.append(_mode_check(mode, expected_type))

    if ciliumnodes is None:
        checks.append(
            _check(
                "ciliumnode_api",
                None,
                False,
                "The API server does not serve CiliumNode (cilium.io/v2). The Cilium operator "
                "registers that kind when it starts: check that it runs.",
            )
        )

    checked_mode = checked_type(mode, expected_type)
    if checked_mode == "ipsec":
        checks.extend(_ipsec_cluster_checks(snapshot.get("secret"), considered))
    elif checked_mode == "wireguard":
        checks.append(_unique_keys_check(considered))
    return checks


def _mode_check(mode, expected_type):
    if mode == "conflict":
        return _check(
            "encryption_mode",
            None,
            False,
            "cilium-config turns on both enable-ipsec and enable-wireguard, and the agents "
            "refuse to start with both. Set encryption.type to one of them.",
        )
    if expected_type:
        passed = mode == expected_type
        message = "cilium-config turns on {0} encryption{1}.".format(
            mode,
            (
                ""
                if passed
                else ', expected {0}: set enable-{0} to "true"'.format(expected_type)
            ),
        )
        return _check("encryption_mode", None, passed, message)
    if mode == "disabled":
        return _check(
            "encryption_mode",
            None,
            False,
            "cilium-config turns encryption off: none of enable-ipsec, enable-wireguard and "
            'enable-ztunnel is "true".',
        )
    message = "cilium-config turns on {0} encryption.".format(mode)
    if mode == "ztunnel":
        message += " This module checks no per-node details of ztunnel encryption."
    return _check("encryption_mode", None, True, message)


def _ipsec_cluster_checks(secret, considered):
    checks = []
    if secret is None or secret["problem"]:
        problem = secret["problem"] if secret else "The IPsec key Secret was not read."
        checks.append(_check("ipsec_key", None, False, problem))
    else:
        checks.append(
            _check(
                "ipsec_key",
                None,
                True,
                "Secret {0}/{1} contains a valid key with SPI {2}.".format(
                    secret["namespace"], secret["name"], secret["spi"]
                ),
            )
        )

    spi = secret["spi"] if secret else None
    if spi is None:
        return checks
    others = sorted(
        (name, _ciliumnode_spi(item))
        for name, item in considered.items()
        if _ciliumnode_spi(item) != spi
    )
    if not others:
        checks.append(
            _check(
                "ipsec_spi_consistent",
                None,
                True,
                "All {0} CiliumNodes use SPI {1}, the SPI of the Secret.".format(
                    len(considered), spi
                ),
            )
        )
        return checks
    listed = ", ".join(
        "{0} (SPI {1})".format(name, _text(other)) for name, other in others
    )
    checks.append(
        _check(
            "ipsec_spi_consistent",
            None,
            False,
            "{0} of {1} CiliumNodes use another SPI than the Secret's SPI {2}: {3}. Right "
            "after a key rotation this lasts until every agent has loaded the new key, which "
            "the key watcher does within about a minute. If it lasts longer, check those "
            "agents' logs.".format(len(others), len(considered), spi, listed),
        )
    )
    return checks


def _unique_keys_check(considered):
    holders = {}
    for name, item in considered.items():
        key = _wireguard_key(item)
        if key:
            holders.setdefault(key, []).append(name)
    duplicates = sorted(sorted(names) for names in holders.values() if len(names) > 1)
    if not duplicates:
        return _check(
            "wireguard_keys_unique",
            None,
            True,
            "No two CiliumNodes publish the same WireGuard public key.",
        )
    groups = "; ".join(", ".join(names) for names in duplicates)
    return _check(
        "wireguard_keys_unique",
        None,
        False,
        "These CiliumNodes publish the same WireGuard public key: {0}. Their agents report "
        "'detected duplicate public key' and traffic between them fails. This happens when "
        "nodes start from a disk image that contains /var/run/cilium/cilium_wg0.key: give "
        "each node its own key.".format(groups),
    )


def _node_report(node, ciliumnode, agent, context):
    name = _name(node)
    agent = agent or {}
    pod = agent.get("pod")
    version = agent_version(pod) if pod else None
    report = {
        "name": name,
        "ciliumnode": ciliumnode is not None,
        "spi": _ciliumnode_spi(ciliumnode) if ciliumnode else None,
        "wireguard_public_key": _wireguard_key(ciliumnode) if ciliumnode else None,
        "agent_pod": _name(pod) if pod else None,
        "cilium_version": ".".join(str(part) for part in version) if version else None,
        "exec_status": None,
        "status": None,
        "encrypt_status": None,
        "checks": [],
    }
    checks = report["checks"]
    checks.append(_ciliumnode_check(name, ciliumnode))
    checks.append(_agent_running_check(name, pod, context["namespace"]))

    checked_mode = context["checked_mode"]
    if checked_mode == "ipsec" and ciliumnode is not None:
        spi = (context["secret"] or {}).get("spi")
        if spi is not None:
            checks.append(_node_spi_check(name, report["spi"], spi))
    if checked_mode == "wireguard" and ciliumnode is not None:
        checks.append(_published_key_check(name, report["wireguard_public_key"]))

    skip = agent.get("skip_reason")
    error = agent.get("exec_error")
    if skip is None and error is None and "status" not in agent:
        skip = "the module did not exec into this agent"
    if skip is not None or error is not None:
        reason = skip if skip is not None else error
        report["exec_status"] = "not exec'd: " + reason
        if error is not None and context["exec_agents"] == "always":
            checks.append(
                _check(
                    "agent_exec",
                    name,
                    False,
                    "Running the agent commands failed: {0}".format(error),
                )
            )
        return report

    report["exec_status"] = EXECUTED
    status, encrypt_status, problems = _parse_agent_output(agent)
    report["status"] = status
    report["encrypt_status"] = encrypt_status
    for problem in problems:
        checks.append(_check("agent_output", name, False, problem))
    if checked_mode is not None and (status is not None or encrypt_status is not None):
        checks.extend(_agent_checks(name, report, status, encrypt_status, context))
    return report


def _parse_agent_output(agent):
    status = encrypt_status = None
    problems = []
    try:
        status = parse_status(agent.get("status"))
    except OutputFormatError as exc:
        problems.append(str(exc))
    try:
        encrypt_status = parse_encrypt_status(agent.get("encrypt_status"))
    except OutputFormatError as exc:
        problems.append(str(exc))
    return status, encrypt_status, problems


def _agent_checks(name, report, status, encrypt_status, context):
    checked_mode = context["checked_mode"]
    checks = []
    reported = (status or {}).get("mode") or (encrypt_status or {}).get("mode")
    message = (status or {}).get("message") or (encrypt_status or {}).get("message")
    passed = reported == checked_mode
    text = "The agent reports encryption mode {0}".format(reported or "none")
    if message:
        text += " with the message {0!r}".format(message)
    text += "." if passed else ", expected {0}.".format(checked_mode)
    checks.append(_check("agent_mode", name, passed, text))
    if not passed:
        return checks

    if checked_mode == "ipsec":
        checks.extend(_agent_ipsec_checks(name, (encrypt_status or {}).get("ipsec")))
    else:
        checks.extend(
            _agent_wireguard_checks(name, report, status, encrypt_status, context)
        )
    return checks


def _agent_ipsec_checks(name, ipsec):
    if ipsec is None:
        return [
            _check(
                "xfrm_errors",
                name,
                False,
                "cilium-dbg encrypt status lists no IPsec state on this node, so no key is in use.",
            )
        ]
    checks = []
    errors = ipsec["errors"]
    if errors == 0:
        checks.append(_check("xfrm_errors", name, True, "Errors: 0."))
    elif errors is None:
        checks.append(
            _check(
                "xfrm_errors",
                name,
                False,
                "cilium-dbg encrypt status has no 'Errors:' line.",
            )
        )
    else:
        counters = ", ".join(
            "{0} {1}".format(key, value)
            for key, value in sorted(ipsec["xfrm_errors"].items())
        )
        checks.append(
            _check(
                "xfrm_errors",
                name,
                False,
                "Errors: {0}{1}. Every XFRM error is a dropped packet. The counters count since "
                "the node booted, so compare them with an earlier run.".format(
                    errors, " ({0})".format(counters) if counters else ""
                ),
            )
        )

    interfaces = ipsec["decryption_interfaces"]
    checks.append(
        _check(
            "decryption_interfaces",
            name,
            bool(interfaces),
            (
                "Decryption interfaces: {0}.".format(", ".join(interfaces))
                if interfaces
                else "No decryption interface is listed, so encrypted packets that arrive on this "
                "node may not be decrypted. The list should hold every device that receives pod "
                "traffic."
            ),
        )
    )

    used, limit = ipsec["max_seq_used"], ipsec["max_seq_limit"]
    if used is not None and limit:
        passed = used < limit * SEQUENCE_LIMIT_RATIO
        checks.append(
            _check(
                "ipsec_sequence_number",
                name,
                passed,
                (
                    "The highest ESP sequence number is {0}.".format(
                        ipsec["max_seq_number"]
                    )
                    if passed
                    else "The highest ESP sequence number {0} is past {1:.0%} of its limit: rotate the "
                    "key before the kernel drops packets with XfrmOutStateSeqError.".format(
                        ipsec["max_seq_number"], SEQUENCE_LIMIT_RATIO
                    )
                ),
            )
        )
    return checks


def _agent_wireguard_checks(name, report, status, encrypt_status, context):
    checks = []
    interface = _wireguard_interface(status, encrypt_status)
    if interface is None:
        return [
            _check(
                "wireguard_peers", name, False, "The agent reports no WireGuard device."
            )
        ]

    expected_peers = max(context["ciliumnode_count"] - 1, 0)
    peers = interface.get("peers")
    checks.append(
        _check(
            "wireguard_peers",
            name,
            peers == expected_peers,
            "{0} has {1} peers{2}.".format(
                interface["name"],
                _text(peers),
                (
                    ""
                    if peers == expected_peers
                    else ", expected {0} (one per other CiliumNode, plus the nodes of "
                    "remote clusters in a Cluster Mesh)".format(expected_peers)
                ),
            ),
        )
    )

    published = report["wireguard_public_key"]
    own = interface.get("public_key")
    if published:
        checks.append(
            _check(
                "wireguard_agent_key",
                name,
                own == published,
                (
                    "The agent's public key matches the CiliumNode annotation."
                    if own == published
                    else "The agent's public key {0} differs from the key {1} in the CiliumNode "
                    "annotation {2}, which the other nodes use.".format(
                        own, published, WIREGUARD_KEY_ANNOTATION
                    )
                ),
            )
        )

    node_encryption = (status or {}).get("node_encryption")
    if _is_true(context["config"].get("encrypt-node")) and node_encryption is not None:
        checks.append(
            _check(
                "wireguard_node_encryption",
                name,
                node_encryption in ("Enabled", "OptedOut"),
                "NodeEncryption: {0}{1}.".format(
                    node_encryption,
                    (
                        ""
                        if node_encryption in ("Enabled", "OptedOut")
                        else ', but cilium-config sets encrypt-node to "true"'
                    ),
                ),
            )
        )
    return checks


def _ciliumnode_check(name, ciliumnode):
    if ciliumnode is not None:
        return _check("ciliumnode", name, True, "CiliumNode {0} exists.".format(name))
    return _check(
        "ciliumnode",
        name,
        False,
        "No CiliumNode named {0}: no Cilium agent has registered this node.".format(
            name
        ),
    )


def _agent_running_check(name, pod, namespace):
    if pod is None:
        return _check(
            "agent_running",
            name,
            False,
            "No Cilium agent pod (label {0} in namespace {1}) runs on this node, so its traffic "
            "is not encrypted.".format(AGENT_LABEL_SELECTOR, namespace),
        )
    phase = (pod.get("status") or {}).get("phase")
    return _check(
        "agent_running",
        name,
        phase == "Running",
        "Agent pod {0} is {1}.".format(_name(pod), phase or "in an unknown phase"),
    )


def _node_spi_check(name, node_spi, spi):
    if node_spi == spi:
        return _check(
            "ipsec_spi",
            name,
            True,
            "The node uses SPI {0}, the SPI of the Secret.".format(spi),
        )
    return _check(
        "ipsec_spi",
        name,
        False,
        "The node uses SPI {0}, but the key in the Secret has SPI {1}.".format(
            _text(node_spi), spi
        ),
    )


def _published_key_check(name, key):
    if not key:
        return _check(
            "wireguard_public_key",
            name,
            False,
            "CiliumNode {0} has no {1} annotation, so no peer can encrypt traffic to this "
            "node.".format(name, WIREGUARD_KEY_ANNOTATION),
        )
    if not _is_wireguard_key(key):
        return _check(
            "wireguard_public_key",
            name,
            False,
            "The {0} annotation of CiliumNode {1} is {2!r}, not a base64-encoded 32-byte "
            "public key.".format(WIREGUARD_KEY_ANNOTATION, name, key),
        )
    return _check(
        "wireguard_public_key",
        name,
        True,
        "The node publishes WireGuard public key {0}.".format(key),
    )


def _rotation_in_progress(checked_mode, considered, reports):
    """Return whether an IPsec key rotation looks unfinished.

    During a rotation the CiliumNodes report two SPIs, and the agents that loaded the new key
    have more keys in use than the others. cilium-cli's encryption status also counts
    different key counts across nodes as a rotation in progress.
    """
    if checked_mode != "ipsec":
        return False
    spis = set(_ciliumnode_spi(item) for item in considered.values())
    counts = set()
    for report in reports:
        ipsec = (report["encrypt_status"] or {}).get("ipsec") or {}
        if ipsec.get("keys_in_use") is not None:
            counts.add(ipsec["keys_in_use"])
    return len(spis) > 1 or len(counts) > 1


def _wireguard_interface(status, encrypt_status):
    candidates = list((status or {}).get("interfaces") or [])
    for device in (encrypt_status or {}).get("wireguard") or []:
        if not any(item["name"] == device["name"] for item in candidates):
            candidates.append(device)
    for item in candidates:
        if item["name"] == "cilium_wg0":
            return item
    return candidates[0] if candidates else None


def _describe_checks(checks):
    failed = [check["name"] for check in checks if not check["passed"]]
    if not failed:
        return "all {0} checks passed".format(len(checks))
    return "{0} of {1} checks failed: {2}".format(
        len(failed), len(checks), ", ".join(failed)
    )


def _check(name, node, passed, message):
    return {"name": name, "node": node, "passed": bool(passed), "message": message}


def _ciliumnode_spi(ciliumnode):
    encryption = ((ciliumnode or {}).get("spec") or {}).get("encryption") or {}
    key = encryption.get("key")
    return key if isinstance(key, int) and not isinstance(key, bool) else None


def _wireguard_key(ciliumnode):
    annotations = ((ciliumnode or {}).get("metadata") or {}).get("annotations") or {}
    return annotations.get(WIREGUARD_KEY_ANNOTATION) or None


def _is_wireguard_key(text):
    try:
        return len(base64.b64decode(text, validate=True)) == WIREGUARD_KEY_BYTES
    except (binascii.Error, ValueError):
        return False


def _pod_rank(pod):
    running = (pod.get("status") or {}).get("phase") == "Running"
    created = (pod.get("metadata") or {}).get("creationTimestamp") or ""
    return (running, str(created))


def _leading_spi(line):
    match = _SPI_PREFIX.match(line)
    if not match:
        return None
    spi = int(match.group(1))
    return spi if 1 <= spi <= 15 else None


def _secret_words(line):
    """Return the decoded key text and each field that could be key material."""
    words = {line, line.strip()}
    for field in line.split():
        if _HEX_WORD.match(field):
            words.add(field)
            words.add(field.upper())
    return words


def _long_strings(strings):
    return set(item for item in strings if item and len(item) >= MIN_MASKED_LENGTH)


def _is_true(value):
    return str(value).strip().lower() == "true"


def _name(item):
    return ((item or {}).get("metadata") or {}).get("name")


def _text(value):
    return "none" if value is None else str(value)
