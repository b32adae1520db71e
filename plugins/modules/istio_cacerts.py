#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kubecrypt maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: istio_cacerts
short_description: Create, validate, renew and rotate Istio's plug-in CA Secret
version_added: 0.1.0
author:
  - kubecrypt maintainers (@kubecrypt)
description:
  - Manages the Secret that istiod reads its plug-in CA from, C(istio-system/cacerts) by default, with
    the data keys C(ca-cert.pem), C(ca-key.pem), C(root-cert.pem) and C(cert-chain.pem).
  - C(ca-cert.pem) and C(ca-key.pem) are a per-cluster intermediate CA with a critical basicConstraints
    CA:TRUE and pathlen 0, a critical keyUsage of keyCertSign, cRLSign and digitalSignature, no
    extendedKeyUsage, key identifiers and the subject O=O(organization), CN=Intermediate CA,
    L=O(cluster_name). C(cert-chain.pem) is the intermediate followed by its root, the order istiod
    expects. C(root-cert.pem) is the trust bundle of one root, or two during a root rotation.
  - The root private key never goes into the cluster. Either supply the root with O(root_cert) and
    O(root_key), or name two files with O(root_cert_path) and O(root_key_path). When neither file exists,
    the module generates the root once, writes its key with mode 0600 and its certificate with mode 0644
    on the host that runs the module, and reads them on later runs. It never overwrites either file.
    Keep a backup of the key, because without it the intermediate cannot be renewed.
  - An existing Secret is validated the way istiod does. The chain must verify to a root in
    C(root-cert.pem), the key must match C(ca-cert.pem), the intermediate must be a CA, and no certificate
    may be expired or not yet valid. Every root must be a self-signed CA. The module also rejects what
    istiod accepts but proxies do not, namely a keyUsage without keyCertSign and an extendedKeyUsage
    without both serverAuth and clientAuth. A defect fails the task with a message that names it, and
    nothing changes unless O(regenerate) allows a replacement.
  - The module renews the intermediate, with a new key and signed by the same root, once it expires
    within O(renew_before). istiod loads a new intermediate under the same root without a restart.
  - With O(rotate_root=true) every run moves the bundle one phase further. Phase 1 has the old root only.
    Phase 2 adds the new root to C(root-cert.pem) and keeps the old intermediate. Phase 3 issues the
    intermediate from the new root and keeps both roots. Phase 4 leaves the new root only. The phase is
    recorded in the annotation C(pod-encryption.kubecrypt.io/root-rotation-phase), and RV(next_step) says
    what to wait for before the next run.
  - Private keys never appear in results, diffs or error messages unless O(return_content=true).
options:
  name:
    description:
      - Name of the Secret. istiod reads only a Secret named V(cacerts).
    type: str
    default: cacerts
  namespace:
    description:
      - Namespace of the Secret, the namespace istiod runs in.
      - It also sets the DNS name istiod.NAMESPACE.svc in the intermediate.
    type: str
    default: istio-system
  cluster_name:
    description:
      - Name of the cluster, written as the locality L of the intermediate's subject.
      - An existing intermediate with another L is a mismatch that O(regenerate) decides on.
    type: str
    required: true
  organization:
    description:
      - Organization O of the subjects of new certificates.
      - When unset, a new bundle uses V(Istio) and a renewed intermediate keeps the O it had.
      - When set and the existing intermediate has another O, O(regenerate) decides.
    type: str
  key_type:
    description:
      - Key of new intermediates and of roots the module generates.
      - When unset, new keys are RSA 4096 bits and a renewed intermediate keeps its key type.
      - When set and the existing intermediate has another key type, O(regenerate) decides.
    type: str
    choices: [rsa_4096, ecdsa_p256]
  intermediate_lifetime:
    description:
      - Lifetime of a new intermediate, for example V(365d), V(12h) or V(1w2d). It is shortened so that
        the intermediate never outlives its root.
      - It must be longer than O(renew_before).
    type: str
    default: 365d
  root_lifetime:
    description:
      - Lifetime of a root that the module generates.
    type: str
    default: 3650d
  renew_before:
    description:
      - Renew the intermediate when it expires within this duration.
    type: str
    default: 30d
  root_cert:
    description:
      - PEM certificate of your own self-signed root. Use it with O(root_key).
    type: str
  root_key:
    description:
      - Unencrypted PEM private key of O(root_cert).
    type: str
  root_cert_path:
    description:
      - File with the root certificate on the host that runs the module. Use it with O(root_key_path).
      - When neither file exists, the module generates a root and writes it to both files. In check mode
        it generates the root but writes nothing.
    type: path
  root_key_path:
    description:
      - File with the root's unencrypted PEM private key, written with mode 0600.
    type: path
  new_root_cert:
    description:
      - PEM certificate of the new root for a root rotation. Use it with O(new_root_key).
    type: str
  new_root_key:
    description:
      - Unencrypted PEM private key of O(new_root_cert).
    type: str
  new_root_cert_path:
    description:
      - File with the new root's certificate for a root rotation. Use it with O(new_root_key_path).
      - When neither file exists, the run that moves to phase 2 generates the new root and writes it to
        both files, so that the run for phase 3 can sign with it.
    type: path
  new_root_key_path:
    description:
      - File with the new root's unencrypted PEM private key, written with mode 0600.
    type: path
  rotate_root:
    description:
      - Move the bundle one root rotation phase further on this run. Phases 2 and 3 need the new root
        options.
      - Apply RV(rotation_istiod_values) to istiod before the first run with V(true).
      - Once the bundle reaches phase 4 and the new root options name its root, further runs change nothing.
    type: bool
    default: false
  regenerate:
    description:
      - What to do when the existing bundle is invalid, does not contain the root from the root options,
        or differs from O(cluster_name), O(organization) or O(key_type).
      - V(fail) fails the task and changes nothing.
      - V(never) keeps a valid bundle that differs, with a warning, and still fails on an invalid one.
      - V(full_idempotence) replaces an invalid bundle, or one without the root from the root options, with
        a new intermediate from that root, which changes the trust bundle in one step, so istiod and every
        workload then need a restart. A valid bundle whose intermediate differs gets a new intermediate
        from the same root, which istiod loads live.
      - V(always) issues a new intermediate on every run, so it is not idempotent.
    type: str
    choices: [never, fail, full_idempotence, always]
    default: fail
  return_content:
    description:
      - Return the four files of the bundle, including the intermediate's private key, in RV(content). Set
        C(no_log) on the task when you use this.
      - Root private keys are never returned.
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
      - A root generated in check mode is not written to its files, so its fingerprint differs from the one
        a real run generates.
  diff_mode:
    support: full
    details:
      - The diff shows the phase and, for every certificate, the subject, issuer, serial, SHA-256
        fingerprint and validity period, never a private key.
  idempotent:
    description: Whether a second run with the same options reports no change.
    support: partial
    details:
      - O(rotate_root=true) changes the bundle on each run until phase 4, and O(regenerate=always) on every
        run.
  platform:
    platforms: posix
    details:
      - The module runs where the task is delegated, usually the controller, and talks to the Kubernetes API from there.
notes:
  - The root certificate and the root key files live on the host that runs the module. Run the task on the
    controller, for example with C(delegate_to) set to localhost.
  - istiod watches C(cacerts) only when it started with one. After the run that creates the Secret, restart
    an istiod that already runs, then the workloads.
  - istiod rejects a change to C(root-cert.pem) unless it runs with C(ISTIO_MULTIROOT_MESH=true). Istio's
    own root rotation test also sets C(PROXY_CONFIG_XDS_AGENT=true), so that running proxies take the new
    trust bundle over xDS. RV(rotation_istiod_values) contains both settings as istiod chart values. Without
    them, restart istiod, gateways, ztunnel and every workload after each phase.
  - In a mesh of several clusters every cluster needs the same root. Move all clusters through a phase
    before any of them moves to the next one.
  - Roots must be self-signed. A bundle whose intermediate was signed by a further intermediate is
    validated, but the module cannot renew or replace that intermediate.
  - Private keys are read and written unencrypted.
  - The module does not manage C(ca-crl.pem). istiod requires a CRL from every CA in C(cert-chain.pem), so
    while that data key exists, a run that would issue a new intermediate fails instead.
  - When another writer changes the Secret during a run (HTTP 409 Conflict), the module reads it again and
    decides anew, except during a root rotation step, where it fails so that no phase is skipped.
seealso:
  - name: Plug in CA certificates
    description: The cacerts Secret format and how istiod uses it.
    link: https://istio.io/latest/docs/tasks/security/cert-management/plugin-ca-cert/
requirements:
  - kubernetes >= 24.2.0
  - cryptography >= 41.0
"""

EXAMPLES = r"""
- name: Create the cacerts Secret from a root kept in files on the controller
  kubecrypt.pod_encryption.istio_cacerts:
    cluster_name: cluster1
    root_cert_path: /etc/kubecrypt/istio/root-cert.pem
    root_key_path: /etc/kubecrypt/istio/root-key.pem
  delegate_to: localhost

- name: Create the cacerts Secret from your own root
  kubecrypt.pod_encryption.istio_cacerts:
    cluster_name: cluster1
    root_cert: "{{ lookup('ansible.builtin.file', 'root-cert.pem') }}"
    root_key: "{{ lookup('ansible.builtin.file', 'root-key.pem') }}"

- name: Validate the existing cacerts Secret without changing it
  kubecrypt.pod_encryption.istio_cacerts:
    cluster_name: cluster1
  check_mode: true

- name: Issue short-lived ECDSA intermediates and renew them 30 days ahead
  kubecrypt.pod_encryption.istio_cacerts:
    cluster_name: cluster1
    key_type: ecdsa_p256
    intermediate_lifetime: 90d
    renew_before: 30d
    root_cert_path: /etc/kubecrypt/istio/root-cert.pem
    root_key_path: /etc/kubecrypt/istio/root-key.pem

- name: Move the root rotation one phase further
  kubecrypt.pod_encryption.istio_cacerts:
    cluster_name: cluster1
    rotate_root: true
    root_cert_path: /etc/kubecrypt/istio/root-cert.pem
    root_key_path: /etc/kubecrypt/istio/root-key.pem
    new_root_cert_path: /etc/kubecrypt/istio/new-root-cert.pem
    new_root_key_path: /etc/kubecrypt/istio/new-root-key.pem
  register: cacerts

- name: Show the phase and what to wait for
  ansible.builtin.debug:
    msg: "Phase {{ cacerts.phase }}. {{ cacerts.next_step }}"

- name: Replace an invalid bundle (istiod and every workload then need a restart)
  kubecrypt.pod_encryption.istio_cacerts:
    cluster_name: cluster1
    regenerate: full_idempotence
    root_cert_path: /etc/kubecrypt/istio/root-cert.pem
    root_key_path: /etc/kubecrypt/istio/root-key.pem

- name: Read the bundle for an external secret store
  kubecrypt.pod_encryption.istio_cacerts:
    cluster_name: cluster1
    return_content: true
  no_log: true
  register: cacerts_content
"""

RETURN = r"""
operation:
  description: What the task did, one of V(create), V(keep), V(renew), V(rotate_root) or V(replace).
  returned: always
  type: str
  sample: renew
reason:
  description: Why the task did it.
  returned: always
  type: str
  sample: the intermediate expires at 2027-01-01T00:00:00Z, within renew_before 30d
phase:
  description:
    - Root rotation phase of the bundle after the task, 1 to 4.
    - 1 means one root. 2 means old and new root, intermediate from the old root. 3 means old and new root,
      intermediate from the new root. 4 means the rotation ended with the new root only.
  returned: always
  type: int
  sample: 2
next_step:
  description: What to do after this task, for example what to wait for before the next rotation phase.
  returned: always
  type: str
  sample: Nothing is needed.
intermediate:
  description: The intermediate in effect after the task.
  returned: always
  type: dict
  contains:
    subject:
      description: Subject in RFC 4514 form.
      type: str
      sample: L=cluster1,CN=Intermediate CA,O=Istio
    issuer:
      description: Issuer in RFC 4514 form.
      type: str
      sample: CN=Root CA,O=Istio
    serial:
      description: Serial number in hexadecimal.
      type: str
      sample: 5d1c0e6a9f3b27c48e01d2f3a4b5c6d7e8f90a1b
    fingerprint:
      description: SHA-256 fingerprint of the certificate, as openssl prints it, behind C(SHA256:).
      type: str
      sample: "SHA256:4B:63:1A:D4:37:2D:17:24:AB:FE:49:FD:59:4B:AD:F3:D7:CE:0C:2F:6A:9C:07:DF:52:1B:AF:B9:04:55:4C:DE"
    not_before:
      description: Start of the validity period, UTC.
      type: str
      sample: "2026-12-04T08:00:00Z"
    not_after:
      description: End of the validity period, UTC.
      type: str
      sample: "2027-12-04T08:05:00Z"
    days_to_expiry:
      description: Whole days from the task until RV(intermediate.not_after), negative once expired.
      type: int
      sample: 365
    key_type:
      description: Key type in the form O(key_type) uses, for example V(ecdsa_p256) or V(rsa_2048).
      type: str
      sample: rsa_4096
root:
  description:
    - The root that signed the intermediate, with the same fields as RV(intermediate) but no key type.
  returned: always
  type: dict
  sample:
    subject: CN=Root CA,O=Istio
    issuer: CN=Root CA,O=Istio
    serial: 1f2e3d4c5b6a79880706f5e4d3c2b1a098765432
    fingerprint: "SHA256:0A:1B:2C:3D:4E:5F:60:71:82:93:A4:B5:C6:D7:E8:F9:0A:1B:2C:3D:4E:5F:60:71:82:93:A4:B5:C6:D7:E8:F9"
    not_before: "2026-12-04T08:00:00Z"
    not_after: "2036-12-02T08:05:00Z"
    days_to_expiry: 3650
trust_bundle:
  description: Every root in C(root-cert.pem) after the task, in file order, with the fields of RV(root).
  returned: always
  type: list
  elements: dict
generated_root:
  description:
    - The root this task generated, when it generated one. C(kind) is V(root) or V(new root), C(written) is
      false in check mode.
  returned: when the task generated a root
  type: dict
  sample:
    kind: root
    cert_path: /etc/kubecrypt/istio/root-cert.pem
    key_path: /etc/kubecrypt/istio/root-key.pem
    fingerprint: "SHA256:0A:1B:2C:3D:4E:5F:60:71:82:93:A4:B5:C6:D7:E8:F9:0A:1B:2C:3D:4E:5F:60:71:82:93:A4:B5:C6:D7:E8:F9"
    written: true
rotation_istiod_values:
  description:
    - istiod chart values that a root rotation needs. Apply them, and let istiod restart, before the first
      run with O(rotate_root=true), and keep them at least until phase 4.
  returned: always
  type: dict
  sample:
    pilot:
      env:
        ISTIO_MULTIROOT_MESH: "true"
    meshConfig:
      defaultConfig:
        proxyMetadata:
          PROXY_CONFIG_XDS_AGENT: "true"
content:
  description: The bundle's files in effect after the task, keyed by data key. Only with O(return_content=true).
  returned: when O(return_content=true)
  type: dict
  sample:
    ca-cert.pem: "-----BEGIN CERTIFICATE----- ..."
    ca-key.pem: "-----BEGIN PRIVATE KEY----- ..."
    cert-chain.pem: "-----BEGIN CERTIFICATE----- ..."
    root-cert.pem: "-----BEGIN CERTIFICATE----- ..."
"""

import base64
import copy
import datetime

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.kubecrypt.pod_encryption.plugins.module_utils._cacerts_secret import (
    CacertsSecret,
    SecretError,
    root_source,
)
from ansible_collections.kubecrypt.pod_encryption.plugins.module_utils._istio_ca import (
    CRYPTOGRAPHY_IMPORT_ERROR,
    CRYPTOGRAPHY_REQUIREMENT,
    HAS_CRYPTOGRAPHY,
    KEY_TYPES,
    REGENERATE_CHOICES,
    ROTATION_ISTIOD_VALUES,
    CAError,
    Request,
    fingerprint,
    other_key_encodings,
)
from ansible_collections.kubecrypt.pod_encryption.plugins.module_utils._k8s_compat import (
    ApiError,
    ObjectStore,
    auth_argument_spec,
    connect,
    new_module,
)

ROOT_OPTION_PAIRS = (
    ("root_cert", "root_key"),
    ("root_cert_path", "root_key_path"),
    ("new_root_cert", "new_root_key"),
    ("new_root_cert_path", "new_root_key_path"),
)
MUTUALLY_EXCLUSIVE = [
    ("root_cert", "root_cert_path"),
    ("root_key", "root_key_path"),
    ("new_root_cert", "new_root_cert_path"),
    ("new_root_key", "new_root_key_path"),
]


def argument_spec():
    spec = auth_argument_spec()
    spec.update(
        name=dict(type="str", default="cacerts"),
        namespace=dict(type="str", default="istio-system"),
        cluster_name=dict(type="str", required=True),
        organization=dict(type="str"),
        key_type=dict(type="str", choices=list(KEY_TYPES)),
        intermediate_lifetime=dict(type="str", default="365d"),
        root_lifetime=dict(type="str", default="3650d"),
        renew_before=dict(type="str", default="30d"),
        root_cert=dict(type="str", no_log=False),
        root_key=dict(type="str", no_log=True),
        root_cert_path=dict(type="path"),
        root_key_path=dict(type="path", no_log=False),
        new_root_cert=dict(type="str", no_log=False),
        new_root_key=dict(type="str", no_log=True),
        new_root_cert_path=dict(type="path"),
        new_root_key_path=dict(type="path", no_log=False),
        rotate_root=dict(type="bool", default=False),
        regenerate=dict(type="str", choices=list(REGENERATE_CHOICES), default="fail"),
        return_content=dict(type="bool", default=False),
    )
    return spec


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc)


def build_request(params):
    return Request(
        cluster_name=params["cluster_name"],
        namespace=params["namespace"],
        organization=params["organization"],
        key_type=params["key_type"],
        intermediate_lifetime=params["intermediate_lifetime"],
        root_lifetime=params["root_lifetime"],
        renew_before=params["renew_before"],
        rotate_root=params["rotate_root"],
        regenerate=params["regenerate"],
    )


def load_roots(params, now, protect):
    """Return the RootSources and RootFiles of the root and the new root options.

    Every key that is read is masked at once, so that no later failure can print it.
    """
    sources = []
    for kind, prefix in (("root", "root_"), ("new root", "new_root_")):
        source, files = root_source(
            kind,
            params[prefix + "cert"],
            params[prefix + "key"],
            params[prefix + "cert_path"],
            params[prefix + "key_path"],
            now,
        )
        if source.authority is not None:
            protect(source.authority.key_pem)
        sources.append((source, files))
    return sources


def main():
    module = new_module(
        argument_spec=argument_spec(),
        supports_check_mode=True,
        mutually_exclusive=MUTUALLY_EXCLUSIVE,
        required_together=[list(pair) for pair in ROOT_OPTION_PAIRS],
    )
    if not HAS_CRYPTOGRAPHY:
        module.fail_json(
            msg=missing_required_lib(CRYPTOGRAPHY_REQUIREMENT),
            exception=CRYPTOGRAPHY_IMPORT_ERROR,
        )
    params = module.params

    def protect(key_pem):
        # Ansible masks these strings in everything it prints, a second barrier behind
        # the rule that no result field carries a private key.
        module._module.no_log_values.update(private_key_strings(key_pem))

    try:
        request = build_request(params)
        (root, root_files), (new_root, new_root_files) = load_roots(
            params, utc_now(), protect
        )
        store = ObjectStore(connect(module), "Secret", "v1")
        cacerts = CacertsSecret(store, params["name"], params["namespace"])
        result = cacerts.ensure(request, root, new_root, utc_now)
    except (SecretError, CAError, ApiError) as exc:
        module.fail_json(msg=str(exc))

    for source in (root, new_root):
        if source.generated is not None:
            protect(source.generated.key_pem)
    if not params["return_content"]:
        for key_pem in result.intermediate_key_pems():
            protect(key_pem)

    for files in (root_files, new_root_files):
        warning = files.key_mode_warning() if files is not None else None
        if warning:
            module.warn(warning)
    for warning in result.plan.warnings:
        module.warn(warning)

    output = build_result(result, params, module.check_mode)
    if module._diff:
        output["diff"] = {
            "before": result.before_state(),
            "after": result.after_state(),
        }
    module.exit_json(**output)


def build_result(result, params, check_mode):
    plan = result.plan
    described = plan.after.describe(result.now)
    output = {
        "changed": result.changed,
        "operation": plan.operation,
        "reason": plan.reason,
        "phase": plan.phase,
        "next_step": result.next_step(),
        "intermediate": described["intermediate"],
        "root": described["root"],
        "trust_bundle": described["trust_bundle"],
        "rotation_istiod_values": copy.deepcopy(ROTATION_ISTIOD_VALUES),
    }
    for source in plan.generated:
        output["generated_root"] = describe_generated_root(source, params, check_mode)
    if params["return_content"]:
        output["content"] = {
            data_key: content.decode("utf-8")
            for data_key, content in plan.after.files().items()
        }
    return output


def describe_generated_root(source, params, check_mode):
    prefix = source.kind.replace(" ", "_") + "_"
    return {
        "kind": source.kind,
        "cert_path": params[prefix + "cert_path"],
        "key_path": params[prefix + "key_path"],
        "fingerprint": fingerprint(source.generated.cert),
        "written": not check_mode,
    }


def private_key_strings(key_pem):
    """Return the forms in which a PEM private key could appear in output."""
    text = key_pem.decode("utf-8", "replace")
    body_lines = [
        line.strip()
        for line in text.splitlines()
        if line.strip() and not line.startswith("-----")
    ]
    forms = {
        text,
        text.strip(),
        base64.b64encode(key_pem).decode("ascii"),
        "".join(body_lines),
    }
    forms.update(line for line in body_lines if len(line) >= 16)
    forms.update(other_key_encodings(key_pem))
    return forms


if __name__ == "__main__":
    main()
