#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kubecrypt maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: cilium_ipsec_key
short_description: Create, validate and rotate the Secret that contains Cilium's IPsec key
version_added: 0.1.0
author:
  - kubecrypt maintainers (@kubecrypt)
description:
  - Manages the Secret that Cilium's agents read their IPsec key from (C(kube-system/cilium-ipsec-keys),
    data key C(keys) by default).
  - The key is one line of four fields separated by single spaces. They are the SPI (key ID, 1 to 15) followed by
    C(+), the algorithm rfc4106(gcm(aes)), the key material in hex and the ICV length in bits, as in
    3+ rfc4106(gcm(aes)) <40 hex characters> 128.
  - The C(+) selects per-tunnel keys, the fix for CVE-2024-28860, and this module never writes a key without it.
  - The hex field is an AES key plus a 4-byte salt from the operating system's CSPRNG, 40 hex characters
    for AES-128 and 72 for AES-256.
  - With O(state=present) the module creates a key when the Secret does not exist and validates an existing
    one. An existing key that Cilium or the kernel would reject fails the task and changes nothing, unless
    O(regenerate) allows replacing it.
  - A rotation writes the next SPI (15 rolls over to 1) with fresh random key material of the same size,
    ICV and C(+), which is the only kind of change the agents apply without a restart.
  - The module records the time a key was written in the annotation
    C(pod-encryption.kubecrypt.io/key-created-at), so O(max_age) rotates only keys older than that age and a
    scheduled run is idempotent.
  - The key material never appears in results, diffs or error messages unless O(return_content=true).
options:
  name:
    description:
      - Name of the Secret. It must match the Cilium Helm value C(encryption.ipsec.secretName).
    type: str
    default: cilium-ipsec-keys
  namespace:
    description:
      - Namespace of the Secret, the namespace Cilium runs in.
    type: str
    default: kube-system
  data_key:
    description:
      - Data key in the Secret that holds the key line. It must match the Cilium Helm value
        C(encryption.ipsec.keyFile).
    type: str
    default: keys
  state:
    description:
      - V(present) creates or validates the key, V(absent) deletes the Secret.
      - Deleting the Secret while Cilium uses IPsec stops new agents from starting.
    type: str
    choices: [present, absent]
    default: present
  key_bits:
    description:
      - AES key size in bits of a new key.
      - When unset, a new key uses 128 bits and an existing key keeps its size.
      - When set and the existing key has another size, the task fails unless O(regenerate) allows a replacement.
    type: int
    choices: [128, 192, 256]
  icv_bits:
    description:
      - Length of the integrity check value in bits. The kernel accepts 96 or 128 for rfc4106(gcm(aes)).
      - When unset, a new key uses 128 and an existing key keeps its ICV.
    type: int
    choices: [96, 128]
  rotate:
    description:
      - Rotate the key on every run in which this is V(true). The task then always reports a change.
      - For scheduled rotation, use O(max_age) instead.
    type: bool
    default: false
  rotate_from_spi:
    description:
      - With O(rotate=true), rotate only while the key has this SPI. When the Secret already holds another SPI,
        another run has rotated the key since the caller read it, and the task keeps that key.
      - Pass the SPI read before deciding to rotate, so that two rotation runs started together rotate once.
    type: int
  max_age:
    description:
      - Rotate the key when it is older than this duration, for example V(90d), V(12h) or V(1w2d).
      - A key whose creation time is not recorded in the annotation is rotated once, so that its age is known from
        then on.
    type: str
  regenerate:
    description:
      - What to do when the existing key is invalid or does not match O(key_bits) or O(icv_bits).
      - V(fail) fails the task and changes nothing.
      - V(never) keeps a valid key whose size or ICV does not match, and still fails on an invalid key.
      - V(full_idempotence) replaces such a key with a new one under the next SPI. Cilium does not apply a new key
        size or ICV by rotation, so every agent then needs a restart.
      - V(always) replaces the key on every run; it is not idempotent.
    type: str
    choices: [never, fail, full_idempotence, always]
    default: fail
  return_content:
    description:
      - Return the key line in RV(key_line). Set C(no_log) on the task when you use this.
    type: bool
    default: false
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - kubernetes.core.k8s_auth_options
attributes:
  check_mode:
    support: full
    details:
      - Writes are sent as a server-side dry run, so admission and validation run but nothing is stored.
  diff_mode:
    support: full
    details:
      - The diff shows the SPI, algorithm, key size, ICV, fingerprint and creation time, never the key material.
  idempotent:
    description: Whether a second run with the same options reports no change.
    support: partial
    details:
      - O(rotate=true) and O(regenerate=always) change the key on every run.
  platform:
    platforms: posix
    details:
      - The module runs where the task is delegated, usually the controller, and talks to the Kubernetes API from there.
notes:
  - Rotate only when every agent runs the same Cilium version, and not during an upgrade.
  - The agents keep the previous key for C(encryption.ipsec.keyRotationDuration) (5 minutes by default) after
    they load a new one. Rotate again only after every node reports the new SPI and that time has passed.
  - When another writer changes the Secret during a run (HTTP 409 Conflict), the module reads it again and decides
    anew. If the other writer rotated the key, a run with O(rotate=true) keeps that rotation and does not
    rotate a second time.
seealso:
  - name: Cilium IPsec transparent encryption
    description: Key format, rotation and troubleshooting.
    link: https://docs.cilium.io/en/stable/security/network/encryption-ipsec/
requirements:
  - kubernetes >= 24.2.0
"""

EXAMPLES = r"""
- name: Create the IPsec key Secret unless it exists, and validate it when it does
  kubecrypt.pod_encryption.cilium_ipsec_key:
    state: present

- name: Create an AES-256 key
  kubecrypt.pod_encryption.cilium_ipsec_key:
    key_bits: 256

- name: Rotate the key when it is older than 90 days
  kubecrypt.pod_encryption.cilium_ipsec_key:
    max_age: 90d

- name: Rotate the key now
  kubecrypt.pod_encryption.cilium_ipsec_key:
    rotate: true

- name: Replace an unparseable key (every agent then needs a restart)
  kubecrypt.pod_encryption.cilium_ipsec_key:
    regenerate: full_idempotence

- name: Read the key line for an external secret store
  kubecrypt.pod_encryption.cilium_ipsec_key:
    return_content: true
  no_log: true
  register: ipsec_key
"""

RETURN = r"""
spi:
  description: SPI (key ID) of the key in effect after the task.
  returned: when O(state=present)
  type: int
  sample: 4
previous_spi:
  description: SPI the key had before the task, when the task rotated or replaced it.
  returned: always
  type: int
  sample: 3
algorithm:
  description: AEAD algorithm of the key.
  returned: when O(state=present)
  type: str
  sample: rfc4106(gcm(aes))
key_bits:
  description: AES key size in bits.
  returned: when O(state=present)
  type: int
  sample: 128
icv_bits:
  description: Integrity check value length in bits.
  returned: when O(state=present)
  type: int
  sample: 128
per_tunnel:
  description: Whether the SPI carries C(+), which makes the agents derive a key per tunnel.
  returned: when O(state=present)
  type: bool
  sample: true
fingerprint:
  description: Shortened SHA-256 of the key material, to compare keys without revealing them.
  returned: when O(state=present)
  type: str
  sample: SHA256:5f0c8e1d2a3b4c6d
created_at:
  description: Time the key in effect was written, from the Secret's annotation.
  returned: when O(state=present)
  type: str
  sample: "2026-12-04T08:00:00Z"
created:
  description: Whether the task created the Secret.
  returned: always
  type: bool
  sample: false
rotated:
  description: Whether the task rotated or replaced the key.
  returned: always
  type: bool
  sample: true
operation:
  description: What the task did, one of V(keep), V(create), V(rotate), V(replace) or V(delete).
  returned: always
  type: str
  sample: rotate
reason:
  description: Why the task took that action.
  returned: always
  type: str
  sample: the key is 7776000 s old, max_age is 7776000 s
key_line:
  description: The key line in effect. Only with O(return_content=true).
  returned: when O(return_content=true) and O(state=present)
  type: str
  sample: 4+ rfc4106(gcm(aes)) 0123456789abcdef0123456789abcdef01234567 128
"""

import base64
import datetime

from ansible_collections.kubecrypt.pod_encryption.plugins.module_utils._ipsec_secret import (
    REGENERATE_CHOICES,
    Decision,
    IPsecKeySecret,
    Request,
    SecretError,
    check_location,
)
from ansible_collections.kubecrypt.pod_encryption.plugins.module_utils._k8s_compat import (
    ApiError,
    ObjectStore,
    auth_argument_spec,
    connect,
    new_module,
)


def argument_spec():
    spec = auth_argument_spec()
    spec.update(
        name=dict(type="str", default="cilium-ipsec-keys"),
        namespace=dict(type="str", default="kube-system"),
        data_key=dict(type="str", default="keys", no_log=False),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        key_bits=dict(type="int", choices=[128, 192, 256]),
        icv_bits=dict(type="int", choices=[96, 128]),
        rotate=dict(type="bool", default=False),
        max_age=dict(type="str"),
        rotate_from_spi=dict(type="int"),
        regenerate=dict(type="str", choices=list(REGENERATE_CHOICES), default="fail"),
        return_content=dict(type="bool", default=False),
    )
    return spec


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc)


def build_result(result, params):
    key = result.key()
    action = result.decision.action
    before = result.before_state()
    output = {
        "changed": result.changed,
        "operation": action,
        "reason": result.decision.reason,
        "created": action == Decision.CREATE,
        "rotated": action in (Decision.ROTATE, Decision.REPLACE),
        "previous_spi": before.get("spi") if action in (Decision.ROTATE, Decision.REPLACE) else None,
    }
    if key is not None:
        output.update(key.describe())
        output["created_at"] = result.after_state().get("created_at")
        if params["return_content"]:
            output["key_line"] = key.line()
    return output


def main():
    module = new_module(
        argument_spec=argument_spec(),
        supports_check_mode=True,
        mutually_exclusive=[("rotate", "max_age")],
    )
    params = module.params
    try:
        check_location(params["name"], params["namespace"], params["data_key"])
        request = Request(
            state=params["state"],
            key_bits=params["key_bits"],
            icv_bits=params["icv_bits"],
            rotate=params["rotate"],
            max_age=params["max_age"],
            regenerate=params["regenerate"],
            rotate_from_spi=params["rotate_from_spi"],
        )
        store = ObjectStore(connect(module), "Secret", "v1")
        secret = IPsecKeySecret(store, params["name"], params["namespace"], params["data_key"])
        result = secret.ensure(request, utc_now)
    except (SecretError, ApiError) as exc:
        module.fail_json(msg=str(exc))

    # Ansible masks these strings in everything it prints, a second barrier behind the rule
    # that no result field carries key material.
    for key in (result.decision.current, result.key()):
        if key is not None and not params["return_content"]:
            module._module.no_log_values.update(secret_strings(key))

    output = build_result(result, params)
    if result.concurrent_rotation:
        module.warn(
            "Another writer rotated the IPsec key while this task ran; the task kept SPI "
            "{0} and did not rotate again.".format(output.get("spi"))
        )
    if result.decision.action == Decision.REPLACE:
        module.warn(
            "The IPsec key was replaced ({0}). Restart every Cilium agent so that all nodes "
            "use the new key.".format(result.decision.reason)
        )
    if module._diff:
        output["diff"] = {"before": result.before_state(), "after": result.after_state()}
    module.exit_json(**output)


def secret_strings(key):
    """Return the forms in which the key material could appear in output."""
    line = key.line()
    return {
        key.key_hex,
        key.key_hex.upper(),
        line,
        base64.b64encode(line.encode("utf-8")).decode("ascii"),
    }


if __name__ == "__main__":
    main()
