# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kubecrypt maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters that compute the istio_mtls role's PeerAuthentications, labels and istiod values.

The decisions live in module_utils/_mesh_policy.py. An invalid request raises
AnsibleFilterError with a message that names the value and the fix.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.kubecrypt.pod_encryption.plugins.module_utils._mesh_policy import (
    MeshPolicyError,
    enrolment_labels,
    istiod_name,
    istiod_values,
    peer_authentications,
    root_namespace,
)


def _reraise(function, *args):
    try:
        return function(*args)
    except MeshPolicyError as exc:
        raise AnsibleFilterError(str(exc))


def mesh_peer_authentications(
    mesh_mode, root_ns, namespaces=None, workload_policies=None
):
    """Return the PeerAuthentication definitions for the mesh, namespaces and workloads."""
    return _reraise(
        peer_authentications, mesh_mode, root_ns, namespaces, workload_policies
    )


def mesh_enrolment_labels(enabled, profile, revision):
    """Return a namespace's enrolment labels, with None for each label to remove."""
    return _reraise(enrolment_labels, profile, revision, enabled)


def mesh_istiod_values(
    values, default_root_namespace, revision, profile, rotation_values=None
):
    """Return the istiod chart values with the root namespace, revision and profile set."""
    return _reraise(
        istiod_values,
        values,
        default_root_namespace,
        revision,
        profile,
        rotation_values,
    )


def mesh_root_namespace(values, default):
    """Return meshConfig.rootNamespace from the istiod values, else ``default``."""
    return root_namespace(values, default)


def mesh_istiod_name(revision):
    """Return the name of the istiod Deployment of a revision."""
    return _reraise(istiod_name, revision)


class FilterModule(object):
    def filters(self):
        return {
            "mesh_peer_authentications": mesh_peer_authentications,
            "mesh_enrolment_labels": mesh_enrolment_labels,
            "mesh_istiod_values": mesh_istiod_values,
            "mesh_root_namespace": mesh_root_namespace,
            "mesh_istiod_name": mesh_istiod_name,
        }
