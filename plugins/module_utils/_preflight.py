# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kubecrypt maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Checks that must pass before Cilium encryption is installed or its IPsec key rotated.

Each check takes plain dicts as the API returns them and returns messages, so the whole file
is pure and unit-tested. Errors stop the run before anything changes; warnings do not.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

WIREGUARD_MIN_KERNEL = (5, 6)
AGENT_CONTAINER = "cilium-agent"
DEFAULT_KEY_ROTATION_SECONDS = 300

_KERNEL = re.compile(r"\A(\d+)\.(\d+)")
_GO_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s)")


def kernel_version(text):
    """Return (major, minor) of a kernel release string such as 5.15.0-1034-aws, or None."""
    match = _KERNEL.match(text or "")
    if not match:
        return None
    return int(match.group(1)), int(match.group(2))


def check_wireguard_kernels(nodes):
    """Return one error listing every node whose kernel is older than 5.6, or none."""
    too_old = []
    for node in nodes:
        name = node["metadata"]["name"]
        release = ((node.get("status") or {}).get("nodeInfo") or {}).get("kernelVersion", "")
        version = kernel_version(release)
        if version is None:
            too_old.append("{0} (kernel version {1!r} unreadable)".format(name, release))
        elif version < WIREGUARD_MIN_KERNEL:
            too_old.append("{0} (kernel {1})".format(name, release))
    if not too_old:
        return []
    return [
        "WireGuard needs Linux 5.6 or later on every node, but these nodes run older "
        "kernels: {0}. Upgrade their kernels or use cilium_encryption_type: ipsec.".format(
            ", ".join(too_old)
        )
    ]


def _get(values, path, default=None):
    current = values
    for part in path.split("."):
        if not isinstance(current, dict) or part not in current:
            return default
        current = current[part]
    return current


def check_ipsec_values(values):
    """Return errors for IPsec combined with chart settings the agent rejects."""
    errors = []
    chaining = _get(values, "cni.chainingMode")
    if chaining not in (None, "", "none"):
        errors.append(
            "IPsec encryption does not work with CNI chaining, but cni.chainingMode is {0!r}. "
            "Use cilium_encryption_type: wireguard or remove cni.chainingMode.".format(chaining)
        )
    l7_proxy = _get(values, "l7Proxy", True)
    transparent = _get(values, "dnsProxy.enableTransparentMode")
    if l7_proxy is not False and transparent is False:
        errors.append(
            "IPsec with the L7 proxy needs DNS proxy transparent mode, but "
            "dnsProxy.enableTransparentMode is false and l7Proxy is on; the agent would not "
            "start. Set dnsProxy.enableTransparentMode: true or l7Proxy: false."
        )
    return errors


def check_tunnel_node_encryption(values):
    """Return a warning when node encryption meets tunnel routing (MTU trouble)."""
    if not _get(values, "encryption.nodeEncryption", False):
        return []
    routing = _get(values, "routingMode") or "tunnel"
    if routing != "tunnel":
        return []
    return [
        "encryption.nodeEncryption with tunnel routing wraps traffic twice, and users have "
        "reported fragmentation and drops from the smaller MTU. Check the MTU of host-network "
        "traffic, or use routingMode: native."
    ]


def agent_images(pods):
    """Return the set of cilium-agent images the running agent pods use."""
    images = set()
    for pod in pods:
        for container in (pod.get("spec") or {}).get("containers") or []:
            if container.get("name") == AGENT_CONTAINER:
                images.add(container.get("image"))
    return images


def check_agents_settled(daemonset, pods):
    """Return errors when the agent DaemonSet is mid-rollout or agents run mixed versions."""
    if daemonset is None:
        return [
            "The Cilium agent DaemonSet was not found, so no agent would load a new key. "
            "Install Cilium with IPsec first."
        ]
    status = daemonset.get("status") or {}
    metadata = daemonset.get("metadata") or {}
    desired = status.get("desiredNumberScheduled", 0)
    errors = []
    rolling = (
        status.get("observedGeneration", 0) < metadata.get("generation", 0)
        or status.get("updatedNumberScheduled", 0) != desired
        or status.get("numberReady", 0) != desired
        or status.get("numberUnavailable", 0) > 0
    )
    if rolling:
        errors.append(
            "The Cilium agent DaemonSet is mid-rollout ({0} of {1} agents updated, {2} "
            "ready). A key rotation during an upgrade can break traffic: wait until the "
            "rollout finishes, then rotate.".format(
                status.get("updatedNumberScheduled", 0), desired, status.get("numberReady", 0)
            )
        )
    images = agent_images(pods)
    if len(images) > 1:
        errors.append(
            "Cilium agents run different versions ({0}). Rotate only when every agent runs "
            "the same version.".format(", ".join(sorted(images)))
        )
    return errors


def go_duration_seconds(text, default=DEFAULT_KEY_ROTATION_SECONDS):
    """Convert a Go duration such as 5m, 5m0s or 1h30m to seconds; ``default`` when empty."""
    if text in (None, ""):
        return default
    position = 0
    seconds = 0.0
    for match in _GO_DURATION_PART.finditer(text):
        if match.start() != position:
            break
        value, unit = float(match.group(1)), match.group(2)
        seconds += value * {"h": 3600, "m": 60, "s": 1, "ms": 0.001}[unit]
        position = match.end()
    if position != len(text) or position == 0:
        raise ValueError(
            "ipsec-key-rotation-duration {0!r} is not a Go duration such as 5m.".format(text)
        )
    return int(seconds)


def node_spis(cilium_nodes):
    """Map each CiliumNode name to its spec.encryption.key (None when unset)."""
    result = {}
    for node in cilium_nodes:
        spec = node.get("spec") or {}
        result[node["metadata"]["name"]] = (spec.get("encryption") or {}).get("key")
    return result


def nodes_not_on(spi, agent_nodes, cilium_nodes):
    """Return the agent nodes whose CiliumNode does not report ``spi``, with what it reports."""
    spis = node_spis(cilium_nodes)
    lagging = []
    for name in sorted(agent_nodes):
        reported = spis.get(name)
        if reported != spi:
            lagging.append(
                "{0} (SPI {1})".format(name, "missing" if reported is None else reported)
            )
    return lagging
