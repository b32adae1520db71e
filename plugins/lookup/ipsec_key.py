# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kubecrypt maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: ipsec_key
short_description: Generate a new Cilium IPsec key line without a cluster
version_added: 0.1.0
author:
  - kubecrypt maintainers (@kubecrypt)
description:
  - Returns a new per-tunnel key line for Cilium IPsec, with key material from the operating system's CSPRNG.
  - Every call returns a different key. Use it where no cluster is reachable, for example to render manifests
    for review; against a cluster, M(kubecrypt.pod_encryption.cilium_ipsec_key) creates and rotates the
    Secret itself.
  - The result is a secret. Set C(no_log) on every task that uses it.
options:
  spi:
    description: SPI (key ID) of the key, from 1 to 15.
    type: int
    default: 1
  key_bits:
    description: AES key size in bits.
    type: int
    default: 128
    choices: [128, 192, 256]
  icv_bits:
    description: Integrity check value length in bits.
    type: int
    default: 128
    choices: [96, 128]
"""

EXAMPLES = r"""
- name: Write a Secret manifest with a new IPsec key
  ansible.builtin.copy:
    dest: /srv/gitops/cilium-ipsec-keys.yaml
    mode: "0600"
    content: |
      apiVersion: v1
      kind: Secret
      metadata:
        name: cilium-ipsec-keys
        namespace: kube-system
      stringData:
        keys: "{{ lookup('kubecrypt.pod_encryption.ipsec_key') }}"
  no_log: true
"""

RETURN = r"""
_raw:
  description: One key line, such as 1+ rfc4106(gcm(aes)) followed by 40 hex characters and 128.
  type: list
  elements: str
"""

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

from ansible_collections.kubecrypt.pod_encryption.plugins.module_utils._ipsec_key import (
    KeyLineError,
    generate_key,
)


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        try:
            key = generate_key(
                spi=self.get_option("spi"),
                key_bits=self.get_option("key_bits"),
                icv_bits=self.get_option("icv_bits"),
            )
        except KeyLineError as exc:
            raise AnsibleLookupError(str(exc))
        return [key.line()]
