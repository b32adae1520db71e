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
  - kubecrypt maintainers (@kubecrypt)
description:
  - Builds the Cilium chart values for IPsec or WireGuard for one chart version from 1.16 to 1.20, and merges
    O(extra_values) on top, key by key.
  - Renders strict mode as C(encryption.strictMode.enabled), C(cidr) and C(allowRemoteNodeIdentities) up to 1.18,
    and as C(encryption.strictMode.egress.*) and C(encryption.strictMode.ingress.enabled) from 1.19.
  - Sets C(hubble.tls.auto.method) and C(clustermesh.apiserver.tls.auto.method) to V(cronJob) by default. The
    chart default V(helm) signs new certificates on every render, so every C(helm upgrade) would change the release.
  - Fails on an C(encryption.type) other than V(ipsec) or V(wireguard) and on C(encryption.enabled=false), because
    the chart then installs Cilium without encryption and without an error.
  - Fails on C(encryption) keys in O(extra_values) that the target chart fails on or ignores. These are the top-level
    C(encryption.keyFile), C(mountPath), C(secretName) and C(interface) (removed in 1.16),
    C(encryption.wireguard.userspaceFallback) from 1.17, C(encryption.ipsec.encryptedOverlay),
    C(encryption.ipsec.interface) and the C(encryption.strictMode.enabled), C(cidr) and
    C(allowRemoteNodeIdentities) keys from 1.20, C(encryption.strictMode.egress) and C(ingress) before 1.19, and any
    key under C(encryption) that the chart's C(values.yaml) does not have.
  - Shows an Ansible warning for each value that is allowed but deprecated or without effect, for example the old
    strict mode keys on 1.19 or O(node_encryption) with IPsec.
  - Error messages name each option by the variable of the C(kubecrypt.pod_encryption.cilium_encryption) role that
    sets it, for example C(cilium_encryption_helm_values) for O(extra_values).
options:
  _input:
    description:
      - Target Cilium chart version, an exact release such as V(1.20.0) or V(v1.19.6), from 1.16 to 1.20.
      - Version ranges are rejected, because the values depend on the minor version.
    type: str
    required: true
  encryption_type:
    description: The encryption type, V(ipsec) or V(wireguard).
    type: str
    required: true
  node_encryption:
    description:
      - Also encrypt node-to-node traffic (C(encryption.nodeEncryption)).
      - Cilium applies it to WireGuard only, so with IPsec the filter warns.
    type: bool
    default: false
  ipsec_secret_name:
    description: Name of the Secret that holds the IPsec key (C(encryption.ipsec.secretName)). IPsec only.
    type: str
    default: cilium-ipsec-keys
  ipsec_key_file:
    description: Data key of the IPsec key in that Secret (C(encryption.ipsec.keyFile)). IPsec only.
    type: str
    default: keys
  ipsec_key_watcher:
    description:
      - Whether the agents reload a rotated IPsec key without a restart (C(encryption.ipsec.keyWatcher)). IPsec only.
      - Left out of the values when not set, so the chart default V(true) applies.
    type: bool
  ipsec_key_rotation_duration:
    description:
      - How long the agents keep the previous IPsec key after a rotation (C(encryption.ipsec.keyRotationDuration)),
        as a duration with a unit such as V(5m). IPsec only.
      - Left out of the values when not set, so the chart default V(5m) applies.
    type: str
  strict_mode:
    description:
      - Strict mode, which drops pod traffic that is not encrypted. Left out of the values when not set or empty.
      - Strict egress with IPsec needs Cilium 1.19 or later. Strict ingress needs WireGuard and Cilium 1.19 or later.
    type: dict
    suboptions:
      enabled:
        description: Drop unencrypted pod traffic that leaves the node towards O(strict_mode.cidr) (strict egress).
        type: bool
        default: false
      cidr:
        description: IPv4 pod CIDR that strict egress protects. Required when O(strict_mode.enabled=true).
        type: str
        default: ""
      allow_remote_node_identities:
        description:
          - Allow the dynamic lookup of remote node identities. The chart documents it as required with tunneling,
            so the filter warns when it is false while C(routingMode) is not V(native).
        type: bool
        default: false
      ingress:
        description: Drop pod traffic that did not arrive through WireGuard (strict ingress).
        type: bool
        default: false
  tls_auto_method:
    description:
      - Method that generates the Hubble and clustermesh-apiserver TLS certificates.
      - V(cronJob) generates them once in the cluster and on a schedule. V(certmanager) needs
        O(tls_cert_manager_issuer). V(helm) also needs O(allow_helm_tls_method=true).
      - O(extra_values) may override either method.
    type: str
    choices: [cronJob, certmanager, helm]
    default: cronJob
  tls_cert_manager_issuer:
    description:
      - cert-manager issuer reference for O(tls_auto_method=certmanager), a mapping with C(name) and optionally
        C(kind) and C(group).
    type: dict
  allow_helm_tls_method:
    description:
      - Accept the V(helm) TLS method, from O(tls_auto_method) or O(extra_values), which makes every run change the
        release.
    type: bool
    default: false
  istio_compatible:
    description:
      - Apply the settings Istio needs in the same cluster, C(cni.exclusive=false), and
        C(socketLB.hostNamespaceOnly=true) when C(kubeProxyReplacement) or C(socketLB.enabled) is true in the
        merged values.
      - Fails when O(extra_values) sets either value the other way.
    type: bool
    default: false
  extra_values:
    description:
      - Helm values merged on top of the computed ones. Mappings merge key by key and any other value, lists
        included, replaces the computed one.
      - C(encryption.type), C(encryption.ipsec.secretName) and C(encryption.ipsec.keyFile) may only repeat
        O(encryption_type), O(ipsec_secret_name) and O(ipsec_key_file).
    type: dict
    default: {}
"""

EXAMPLES = r"""
- name: Compute the values for WireGuard with node encryption on Cilium 1.20
  ansible.builtin.set_fact:
    cilium_values: >-
      {{ '1.20.0' | kubecrypt.pod_encryption.cilium_values(encryption_type='wireguard', node_encryption=true) }}

- name: Compute the values for IPsec with strict egress encryption on Cilium 1.19
  ansible.builtin.set_fact:
    cilium_values: >-
      {{ '1.19.6' | kubecrypt.pod_encryption.cilium_values(
           encryption_type='ipsec',
           strict_mode={'enabled': true, 'cidr': '10.0.0.0/8', 'allow_remote_node_identities': true}) }}

- name: Compute the values for a cluster that also runs Istio, with certificates from cert-manager
  ansible.builtin.set_fact:
    cilium_values: >-
      {{ '1.20.0' | kubecrypt.pod_encryption.cilium_values(
           encryption_type='wireguard',
           istio_compatible=true,
           tls_auto_method='certmanager',
           tls_cert_manager_issuer={'kind': 'ClusterIssuer', 'name': 'ca-issuer'},
           extra_values={'kubeProxyReplacement': true}) }}
"""

RETURN = r"""
_value:
  description:
    - The complete Helm values, with O(extra_values) merged on top.
    - Warnings about values that are allowed but deprecated or without effect are shown as Ansible warnings,
      not returned.
  type: dict
  sample:
    encryption:
      enabled: true
      type: wireguard
      nodeEncryption: true
    hubble:
      tls:
        auto:
          method: cronJob
    clustermesh:
      apiserver:
        tls:
          auto:
            method: cronJob
"""

from ansible.errors import AnsibleFilterError
from ansible.utils.display import Display

from ansible_collections.kubecrypt.pod_encryption.plugins.module_utils._cilium_values import (
    ValuesError,
    compute_values,
)

display = Display()


def cilium_values(
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
    try:
        computed = compute_values(
            chart_version,
            encryption_type,
            node_encryption=node_encryption,
            ipsec_secret_name=ipsec_secret_name,
            ipsec_key_file=ipsec_key_file,
            ipsec_key_watcher=ipsec_key_watcher,
            ipsec_key_rotation_duration=ipsec_key_rotation_duration,
            strict_mode=strict_mode,
            tls_auto_method=tls_auto_method,
            tls_cert_manager_issuer=tls_cert_manager_issuer,
            allow_helm_tls_method=allow_helm_tls_method,
            istio_compatible=istio_compatible,
            extra_values=extra_values,
        )
    except ValuesError as exc:
        raise AnsibleFilterError(str(exc))

    for message in computed.warnings:
        display.warning(message)
    return computed.values


class FilterModule(object):
    def filters(self):
        return {"cilium_values": cilium_values}
