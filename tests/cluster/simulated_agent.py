"""Play the part of the Cilium agents for key rotation tests on the local control plane.

A real agent loads the IPsec key file when the Secret changes and then publishes the SPI it
uses in its CiliumNode's spec.encryption.key. No agent runs on kwok's simulated nodes, so
this process does that publishing: it reads the Secret about once a second and, after
--delay seconds, sets spec.encryption.key on one CiliumNode per Node (creating the CiliumNode
if needed). Nodes named with --stuck keep the SPI their CiliumNode shows, to test the rotation
timeout, until --stuck-for seconds have passed. When cilium-config turns WireGuard on, it
also publishes a public key per node in the network.cilium.io/wg-pub-key annotation, as each
agent does with the key pair it generates. It exits by itself after --lifetime seconds.
"""

import argparse
import base64
import os
import sys
import time

import urllib3

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from kubernetes import client, config
from kubernetes.client.rest import ApiException

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

# Importing paths makes the collection importable.
import paths  # noqa: E402,F401 pylint: disable=unused-import

from ansible_collections.kubecrypt.pod_encryption.plugins.module_utils._ipsec_key import (  # noqa: E402
    KeyLineError,
    parse_key_line,
)

GROUP, VERSION, PLURAL = "cilium.io", "v2", "ciliumnodes"
WG_ANNOTATION = "network.cilium.io/wg-pub-key"


def wireguard_enabled(core, namespace):
    try:
        config_map = core.read_namespaced_config_map("cilium-config", namespace)
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return (config_map.data or {}).get("enable-wireguard") == "true"


def new_public_key():
    """Return a fresh X25519 public key in base64, the form WireGuard publishes."""
    public = X25519PrivateKey.generate().public_key()
    raw = public.public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return base64.b64encode(raw).decode()


def publish_wireguard_key(custom, node_name):
    """Annotate the node's CiliumNode with a public key unless it has one."""
    try:
        current = custom.get_cluster_custom_object(GROUP, VERSION, PLURAL, node_name)
    except ApiException as exc:
        if exc.status != 404:
            raise
        custom.create_cluster_custom_object(
            GROUP,
            VERSION,
            PLURAL,
            {
                "apiVersion": "cilium.io/v2",
                "kind": "CiliumNode",
                "metadata": {
                    "name": node_name,
                    "annotations": {WG_ANNOTATION: new_public_key()},
                },
                "spec": {},
            },
        )
        return
    if WG_ANNOTATION not in ((current.get("metadata") or {}).get("annotations") or {}):
        patch = {"metadata": {"annotations": {WG_ANNOTATION: new_public_key()}}}
        custom.patch_cluster_custom_object(GROUP, VERSION, PLURAL, node_name, patch)


def read_spi(core, namespace, name, data_key):
    try:
        secret = core.read_namespaced_secret(name, namespace)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    try:
        text = base64.b64decode((secret.data or {}).get(data_key, "")).decode()
        return parse_key_line(text).spi
    except (KeyLineError, ValueError):
        return None


def published_spi(custom, node_name):
    """Return the SPI the node's CiliumNode shows, or None when there is no CiliumNode."""
    try:
        current = custom.get_cluster_custom_object(GROUP, VERSION, PLURAL, node_name)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return ((current.get("spec") or {}).get("encryption") or {}).get("key")


def publish(custom, node_name, spi):
    """Set spec.encryption.key of the node's CiliumNode to ``spi``, creating it if needed."""
    body = {"spec": {"encryption": {"key": spi}}}
    try:
        current = custom.get_cluster_custom_object(GROUP, VERSION, PLURAL, node_name)
    except ApiException as exc:
        if exc.status != 404:
            raise
        custom.create_cluster_custom_object(
            GROUP,
            VERSION,
            PLURAL,
            {
                "apiVersion": "cilium.io/v2",
                "kind": "CiliumNode",
                "metadata": {"name": node_name},
                "spec": {"encryption": {"key": spi}},
            },
        )
        return
    if ((current.get("spec") or {}).get("encryption") or {}).get("key") != spi:
        custom.patch_cluster_custom_object(GROUP, VERSION, PLURAL, node_name, body)


def publish_all(core, custom, args, started, seen_at):
    """Publish the current SPI, and WireGuard keys when on, for every node once."""
    if wireguard_enabled(core, args.namespace):
        for node in core.list_node().items:
            publish_wireguard_key(custom, node.metadata.name)
    spi = read_spi(core, args.namespace, args.secret, args.data_key)
    now = time.monotonic()
    stuck_now = args.stuck_for is None or now - started < args.stuck_for
    if spi is not None:
        seen_at.setdefault(spi, now)
        ready = now - seen_at[spi] >= args.delay
        for node in core.list_node().items:
            name = node.metadata.name
            current = published_spi(custom, name)
            if current == spi:
                continue
            if name in args.stuck and stuck_now and current is not None:
                continue
            # A node without a CiliumNode publishes at once, like an agent that starts.
            if ready or current is None:
                publish(custom, name, spi)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--namespace", default="kube-system")
    parser.add_argument("--secret", default="cilium-ipsec-keys")
    parser.add_argument("--data-key", default="keys")
    parser.add_argument(
        "--stuck", action="append", default=[], help="node that never updates"
    )
    parser.add_argument(
        "--stuck-for",
        type=float,
        default=None,
        help="seconds until stuck nodes recover",
    )
    parser.add_argument(
        "--delay", type=float, default=2.0, help="seconds before publishing"
    )
    parser.add_argument(
        "--lifetime", type=float, default=900.0, help="seconds before exiting"
    )
    args = parser.parse_args()

    config.load_kube_config(config_file=args.kubeconfig)
    core = client.CoreV1Api()
    custom = client.CustomObjectsApi()
    started = time.monotonic()
    deadline = started + args.lifetime
    seen_at = {}
    while time.monotonic() < deadline:
        try:
            publish_all(core, custom, args, started, seen_at)
        except (ApiException, OSError, urllib3.exceptions.HTTPError) as exc:
            # The API server may be restarting; an agent retries too.
            print(
                "simulated_agent: {0}; retrying".format(type(exc).__name__),
                file=sys.stderr,
            )
        time.sleep(1)


if __name__ == "__main__":
    main()
