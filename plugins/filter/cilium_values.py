# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kubecrypt maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: cilium_values
short_description: Compute the Cilium Helm values that turn on transparent encryption
version_added: 0.1.0
author:
  - kubecrypt maintainers
description:
  - Builds the C(encryption) block of the Cilium chart's values for IPsec or WireGuard and merges the
    user's extra values on top, key by key.
  - Fails on an C(encryption.type) other than C(ipsec) or C(wireguard), because the chart silently installs
    Cilium without encryption for any other value, and on the top-level C(encryption.keyFile),
    C(encryption.mountPath), C(encryption.secretName) and C(encryption.interface) keys that chart 1.16 removed.
options:
  _input:
    description: The encryption type, V(ipsec) or V(wireguard).
    type: str
    required: true
  node_encryption:
    description: Also encrypt node-to-node traffic (WireGuard only).
    type: bool
    default: false
  ipsec_secret_name:
    description: Name of the Secret that holds the IPsec key.
    type: str
    default: cilium-ipsec-keys
  ipsec_key_file:
    description: Data key of the IPsec key in that Secret.
    type: str
    default: keys
  extra_values:
    description: Helm values merged on top of the computed ones.
    type: dict
    default: {}
"""

EXAMPLES = r"""
- name: Compute the values for WireGuard with node encryption
  ansible.builtin.set_fact:
    cilium_values: "{{ 'wireguard' | kubecrypt.pod_encryption.cilium_values(node_encryption=true) }}"
"""

RETURN = r"""
_value:
  description: The complete Helm values.
  type: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.kubecrypt.pod_encryption.plugins.module_utils._cilium_values import (
    ValuesError,
    compute_values,
)


def cilium_values(
    encryption_type,
    node_encryption=False,
    ipsec_secret_name="cilium-ipsec-keys",
    ipsec_key_file="keys",
    extra_values=None,
):
    try:
        return compute_values(
            encryption_type,
            node_encryption=node_encryption,
            ipsec_secret_name=ipsec_secret_name,
            ipsec_key_file=ipsec_key_file,
            extra_values=extra_values,
        )
    except ValuesError as exc:
        raise AnsibleFilterError(str(exc))


class FilterModule(object):
    def filters(self):
        return {"cilium_values": cilium_values}
