#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kubecrypt maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: cilium_preflight
short_description: Check a cluster before Cilium encryption is installed or its IPsec key rotated
version_added: 0.1.0
author:
  - kubecrypt maintainers (@kubecrypt)
description:
  - Reads the nodes, the Cilium agent DaemonSet and its pods, C(cilium-config), the CiliumNodes and the IPsec
    key Secret, and fails with one message that lists every problem before anything changes.
  - For O(operation=install) with WireGuard, every node's C(status.nodeInfo.kernelVersion) must be 5.6 or later.
  - For O(operation=install) with IPsec, the Helm values must not use CNI chaining, and the L7 proxy needs DNS
    proxy transparent mode.
  - For O(operation=rotate), the agent DaemonSet must not be mid-rollout and every agent must run the same image.
  - Warns when node encryption is combined with tunnel routing, because of the smaller MTU.
  - Returns the facts a rotation needs, such as the key watcher setting, the key rotation duration and the SPI
    each node reports.
options:
  operation:
    description:
      - V(install) checks before the chart is installed or upgraded, V(rotate) before the IPsec key is rotated.
      - V(status) runs no check and only returns the facts, for polling while a rotation spreads.
    type: str
    choices: [install, rotate, status]
    default: install
  encryption_type:
    description: The encryption to check for.
    type: str
    choices: [ipsec, wireguard]
    required: true
  values:
    description: The complete Helm values that will be installed. Used by O(operation=install).
    type: dict
    default: {}
  namespace:
    description: Namespace of the Cilium agents, C(cilium-config) and the IPsec key Secret.
    type: str
    default: kube-system
  ipsec_secret_name:
    description: Name of the IPsec key Secret.
    type: str
    default: cilium-ipsec-keys
  ipsec_key_file:
    description: Data key of the IPsec key in the Secret.
    type: str
    default: keys
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - kubernetes.core.k8s_auth_options
attributes:
  check_mode:
    support: full
    details:
      - The module only reads.
  diff_mode:
    support: none
  idempotent:
    description: Whether a second run with the same options reports no change.
    support: full
  platform:
    platforms: posix
    details:
      - The module runs where the task is delegated, usually the controller, and talks to the Kubernetes API from there.
notes:
  - Kernel versions come from the API, as each kubelet reports them; the module cannot check kernel modules or
    build options such as CONFIG_WIREGUARD.
requirements:
  - kubernetes >= 24.2.0
"""

EXAMPLES = r"""
- name: Check the cluster before installing Cilium with WireGuard
  kubecrypt.pod_encryption.cilium_preflight:
    encryption_type: wireguard
    values: "{{ cilium_values }}"

- name: Check that the agents are settled before rotating the IPsec key
  kubecrypt.pod_encryption.cilium_preflight:
    operation: rotate
    encryption_type: ipsec
  register: rotation_facts
"""

RETURN = r"""
warnings_found:
  description: Conditions that do not stop the run but that a user should know about.
  returned: always
  type: list
  elements: str
  sample: []
nodes:
  description: Names of the nodes in the cluster.
  returned: always
  type: list
  elements: str
  sample: [worker-1, worker-2]
agent_nodes:
  description: Names of the nodes that run a Cilium agent pod.
  returned: always
  type: list
  elements: str
  sample: [worker-1, worker-2]
key_watcher:
  description: Whether the agents reload the IPsec key file when it changes, from C(cilium-config).
  returned: always
  type: bool
  sample: true
key_rotation_seconds:
  description: How long the agents keep the previous IPsec key after a rotation, in seconds.
  returned: always
  type: int
  sample: 300
current_spi:
  description: SPI of the key in the IPsec Secret, or null when there is no valid key.
  returned: always
  type: int
  sample: 3
node_spis:
  description: SPI each CiliumNode reports in C(spec.encryption.key).
  returned: always
  type: dict
  sample: {worker-1: 3, worker-2: 3}
lagging_nodes:
  description: Agent nodes whose CiliumNode does not report RV(current_spi), with the SPI they report.
  returned: always
  type: list
  elements: str
  sample: ["worker-2 (SPI 2)"]
"""

import base64

from ansible_collections.kubecrypt.pod_encryption.plugins.module_utils._ipsec_key import (
    KeyLineError,
    parse_key_line,
)
from ansible_collections.kubecrypt.pod_encryption.plugins.module_utils._k8s_compat import (
    ApiError,
    ObjectStore,
    auth_argument_spec,
    connect,
    new_module,
)
from ansible_collections.kubecrypt.pod_encryption.plugins.module_utils._preflight import (
    check_agents_settled,
    check_ipsec_values,
    check_tunnel_node_encryption,
    check_wireguard_kernels,
    go_duration_seconds,
    node_spis,
    nodes_not_on,
)

AGENT_SELECTOR = "k8s-app=cilium"


def argument_spec():
    spec = auth_argument_spec()
    spec.update(
        operation=dict(type="str", choices=["install", "rotate", "status"], default="install"),
        encryption_type=dict(type="str", choices=["ipsec", "wireguard"], required=True),
        values=dict(type="dict", default={}),
        namespace=dict(type="str", default="kube-system"),
        ipsec_secret_name=dict(type="str", default="cilium-ipsec-keys"),
        ipsec_key_file=dict(type="str", default="keys", no_log=False),
    )
    return spec


class ClusterReader:
    """Read the objects the checks need."""

    def __init__(self, client, namespace):
        self.client = client
        self.namespace = namespace

    def list(self, kind, api_version, namespace=None, label_selector=None):
        store = ObjectStore(self.client, kind, api_version)
        return store.list(namespace=namespace, label_selector=label_selector)

    def get(self, kind, api_version, name):
        return ObjectStore(self.client, kind, api_version).get(name, self.namespace)

    def cilium_nodes(self):
        try:
            return self.list("CiliumNode", "cilium.io/v2")
        except ApiError:
            # The CRD exists only once an operator has run; no CiliumNode then.
            return []


def current_spi(secret, data_key):
    if secret is None:
        return None
    try:
        text = base64.b64decode((secret.get("data") or {}).get(data_key) or "").decode()
        return parse_key_line(text).spi
    except (KeyLineError, ValueError, UnicodeDecodeError):
        return None


def main():
    module = new_module(argument_spec=argument_spec(), supports_check_mode=True)
    params = module.params
    try:
        reader = ClusterReader(connect(module), params["namespace"])
        nodes = reader.list("Node", "v1")
        daemonset = reader.get("DaemonSet", "apps/v1", "cilium")
        pods = reader.list("Pod", "v1", params["namespace"], AGENT_SELECTOR)
        config = reader.get("ConfigMap", "v1", "cilium-config")
        secret = reader.get("Secret", "v1", params["ipsec_secret_name"])
        cilium_nodes = reader.cilium_nodes()
    except ApiError as exc:
        module.fail_json(msg=str(exc))

    errors = []
    warnings = []
    if params["operation"] == "install":
        if not nodes:
            errors.append(
                "The cluster has no nodes, so no Cilium agent could start. Check that "
                "KUBECONFIG or K8S_AUTH_HOST points at the intended cluster."
            )
        if params["encryption_type"] == "wireguard":
            errors += check_wireguard_kernels(nodes)
        else:
            errors += check_ipsec_values(params["values"])
        warnings += check_tunnel_node_encryption(params["values"])
    elif params["operation"] == "rotate":
        errors += check_agents_settled(daemonset, pods)

    config_data = (config or {}).get("data") or {}
    try:
        rotation_seconds = go_duration_seconds(config_data.get("ipsec-key-rotation-duration"))
    except ValueError as exc:
        errors.append(str(exc))
        rotation_seconds = None

    if errors:
        module.fail_json(msg=" ".join(errors), errors=errors)
    for warning in warnings:
        module.warn(warning)

    agent_nodes = sorted(
        {(pod.get("spec") or {}).get("nodeName") for pod in pods} - {None}
    )
    spi = current_spi(secret, params["ipsec_key_file"])
    module.exit_json(
        changed=False,
        warnings_found=warnings,
        nodes=sorted(node["metadata"]["name"] for node in nodes),
        agent_nodes=agent_nodes,
        key_watcher=config_data.get("enable-ipsec-key-watcher", "true") != "false",
        key_rotation_seconds=rotation_seconds,
        current_spi=spi,
        node_spis=node_spis(cilium_nodes),
        lagging_nodes=nodes_not_on(spi, agent_nodes, cilium_nodes) if spi else [],
    )


if __name__ == "__main__":
    main()
