# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kubecrypt maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read and write Istio's ``cacerts`` Secret and the root CA files on the controller.

The decisions live in _istio_ca. CacertsSecret applies a Plan through an ObjectStore and
retries when another writer wins a race. RootFiles keeps a root that the module
generated in two files on the host that runs the module, with the key in mode 0600 and
never in the cluster.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import binascii
import errno
import os
import stat

from ansible_collections.kubecrypt.pod_encryption.plugins.module_utils._ipsec_secret import (
    ANNOTATION_PREFIX,
    MANAGED_BY,
    MANAGED_BY_LABEL,
)
from ansible_collections.kubecrypt.pod_encryption.plugins.module_utils._istio_ca import (
    DATA_KEYS,
    CA_KEY,
    CAError,
    RootSource,
    decide,
    detect_phase,
    load_authority,
    next_step,
    validate_bundle,
)
from ansible_collections.kubecrypt.pod_encryption.plugins.module_utils._k8s_compat import (
    HTTP_CONFLICT,
    ApiError,
)

PHASE_ANNOTATION = ANNOTATION_PREFIX + "root-rotation-phase"
# Each conflicting write (HTTP 409) costs one more read and decision before the module
# gives up.
MAX_WRITE_ATTEMPTS = 3
KEY_FILE_MODE = 0o600
CERT_FILE_MODE = 0o644


class SecretError(Exception):
    """A condition the user has to resolve. The message states the cause and the fix."""


# ---------------------------------------------------------------------------
# Root CA files


class RootFiles:
    """A root CA kept as a certificate file and a private key file."""

    def __init__(self, cert_path, key_path):
        self.cert_path = cert_path
        self.key_path = key_path

    def load(self, label, now):
        """Return the root as an Authority, or None when neither file exists.

        Raise SecretError when only one of the files exists or a file cannot be read.
        """
        cert_exists = os.path.exists(self.cert_path)
        key_exists = os.path.exists(self.key_path)
        if not cert_exists and not key_exists:
            return None
        if cert_exists != key_exists:
            present, absent = (
                (self.cert_path, self.key_path)
                if cert_exists
                else (self.key_path, self.cert_path)
            )
            raise SecretError(
                "{0} exists but {1} does not. Restore the missing file of the {2}, or "
                "move both files away to have a new root generated.".format(
                    present, absent, label
                )
            )
        try:
            return load_authority(
                _read_file(self.cert_path), _read_file(self.key_path), label, now
            )
        except CAError as exc:
            raise SecretError(str(exc))

    def key_mode_warning(self):
        """Return a warning when the key file is readable by other users, else None."""
        try:
            mode = stat.S_IMODE(os.stat(self.key_path).st_mode)
        except OSError:
            return None
        if mode & 0o077:
            return (
                "The root key file {0} has mode {1:04o}, so other users can read it. "
                "Run 'chmod 600 {0}'.".format(self.key_path, mode)
            )
        return None

    def write(self, authority):
        """Write a new root: the key first with mode 0600, then the certificate.

        Neither file is overwritten, so a root key that exists is never lost.
        """
        _write_new_file(self.key_path, authority.key_pem, KEY_FILE_MODE)
        _write_new_file(self.cert_path, authority.cert_pem, CERT_FILE_MODE)


def _read_file(path):
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except (IOError, OSError) as exc:
        raise SecretError("Failed to read {0}: {1}.".format(path, exc.strerror or exc))


def _write_new_file(path, content, mode):
    """Write ``content`` to a temporary file, then link it to ``path`` unless taken."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise SecretError(
            "The directory {0} of {1} does not exist. Create it first.".format(
                directory, path
            )
        )
    temporary = "{0}.tmp-{1}".format(path, os.getpid())
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        try:
            os.fchmod(descriptor, mode)
            os.write(descriptor, content)
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        os.link(temporary, path)
    except (IOError, OSError) as exc:
        if exc.errno == errno.EEXIST and os.path.exists(path):
            raise SecretError(
                "{0} appeared while this run generated a new root, so it was left as it "
                "is. Run the task again to use it.".format(path)
            )
        raise SecretError("Failed to write {0}: {1}.".format(path, exc.strerror or exc))
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def root_source(kind, cert_pem, key_pem, cert_path, key_path, now):
    """Build the RootSource for the root or new root options.

    ``kind`` is ``root`` or ``new root``. PEM content wins over paths, and the module's
    argument spec makes the two mutually exclusive. Return the source and the RootFiles
    behind it, or None for the files when the root comes from content or is not given.
    """
    prefix = kind.replace(" ", "_")
    if cert_pem is not None:
        options = "{0}_cert and {0}_key".format(prefix)
        try:
            authority = load_authority(
                _to_bytes(cert_pem), _to_bytes(key_pem), options, now
            )
        except CAError as exc:
            raise SecretError(str(exc))
        return RootSource(kind, options, authority=authority), None
    if cert_path is None:
        return RootSource(kind, None), None

    options = "{0}_cert_path {1} and {0}_key_path {2}".format(
        prefix, cert_path, key_path
    )
    files = RootFiles(cert_path, key_path)
    authority = files.load(options, now)
    source = RootSource(
        kind,
        options,
        authority=authority,
        can_generate=authority is None,
        persist=files.write,
    )
    return source, files


def _to_bytes(text):
    if isinstance(text, bytes):
        return text
    return text.encode("utf-8")


# ---------------------------------------------------------------------------
# The Secret


def read_bundle_files(secret):
    """Return the Secret's data as a dict of data key to bytes."""
    files = {}
    for data_key, value in (secret.get("data") or {}).items():
        try:
            files[data_key] = base64.b64decode(value or "")
        except (TypeError, ValueError, binascii.Error):
            raise SecretError(
                "Secret {0} data key {1!r} is not valid base64.".format(
                    _secret_name(secret), data_key
                )
            )
    return files


def recorded_phase(secret):
    """Return the rotation phase from the Secret's annotation, or None."""
    annotations = (secret.get("metadata") or {}).get("annotations") or {}
    value = annotations.get(PHASE_ANNOTATION)
    if value in ("1", "2", "3", "4"):
        return int(value)
    return None


def _secret_name(secret):
    metadata = secret.get("metadata") or {}
    return "{0}/{1}".format(metadata.get("namespace"), metadata.get("name"))


def build_secret(name, namespace, plan, existing=None):
    """Build the Secret body for ``plan``, keeping the other fields of ``existing``."""
    if existing is None:
        metadata = {"name": name, "namespace": namespace}
        secret_type = "Opaque"
        data = {}
    else:
        metadata = dict(existing.get("metadata") or {})
        for field in ("managedFields", "creationTimestamp", "uid", "generation"):
            metadata.pop(field, None)
        secret_type = existing.get("type") or "Opaque"
        data = dict(existing.get("data") or {})

    labels = dict(metadata.get("labels") or {})
    labels[MANAGED_BY_LABEL] = MANAGED_BY
    annotations = dict(metadata.get("annotations") or {})
    annotations[PHASE_ANNOTATION] = str(plan.phase)
    metadata["labels"] = labels
    metadata["annotations"] = annotations

    for data_key, content in plan.after.files().items():
        data[data_key] = base64.b64encode(content).decode("ascii")
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": secret_type,
        "metadata": metadata,
        "data": data,
    }


class CacertsSecret:
    """Apply Plans to one ``cacerts`` Secret through an ObjectStore."""

    def __init__(self, store, name, namespace):
        self.store = store
        self.name = name
        self.namespace = namespace
        self.source = "Secret {0}/{1}".format(namespace, name)

    def ensure(self, request, root, new_root, now_function):
        """Converge the Secret and return a Result.

        When another writer wins a race, read the Secret again and decide anew.
        """
        original = self.store.get(self.name, self.namespace)
        secret = original
        for attempt in range(1, MAX_WRITE_ATTEMPTS + 1):
            if (
                secret is not original
                and request.rotate_root
                and _bundle_changed(original, secret)
            ):
                # Moving on from another writer's state could skip a phase that the
                # proxies have not seen yet.
                raise SecretError(
                    "{0} changed while this run prepared a root rotation step, so the "
                    "rotation did not advance. Check the phase annotation {1} and the "
                    "trust bundle, then run again.".format(
                        self.source, PHASE_ANNOTATION
                    )
                )
            now = now_function()
            plan = self._decide(secret, request, root, new_root, now)
            if not plan.changes:
                return Result(plan, original, secret, now, self.source)
            self._persist_generated_roots(plan)
            try:
                written = self._write(plan, secret)
            except ApiError as exc:
                if exc.status == HTTP_CONFLICT and attempt < MAX_WRITE_ATTEMPTS:
                    secret = self.store.get(self.name, self.namespace)
                    continue
                if exc.status == HTTP_CONFLICT:
                    raise SecretError(
                        "{0} kept changing while this run tried to write it ({1} "
                        "conflicting writes), so the bundle was left as it is. Find the "
                        "other writer, then run again.".format(self.source, attempt)
                    )
                raise
            return Result(plan, original, written, now, self.source)
        raise AssertionError("unreachable")

    def _decide(self, secret, request, root, new_root, now):
        files = None if secret is None else read_bundle_files(secret)
        phase = None if secret is None else recorded_phase(secret)
        try:
            return decide(files, phase, request, root, new_root, now, self.source)
        except CAError as exc:
            raise SecretError(str(exc))

    def _persist_generated_roots(self, plan):
        """Write the roots this plan generated to their files, except in a dry run.

        The files are written before the Secret, so that a root the cluster trusts
        always has its key on disk.
        """
        for source in plan.generated:
            if not self.store.dry_run:
                source.persist(source.generated)
                source.mark_persisted()

    def _write(self, plan, secret):
        body = build_secret(self.name, self.namespace, plan, existing=secret)
        if secret is None:
            return self.store.create(body, self.namespace)
        return self.store.replace(body, self.namespace)


def _bundle_changed(first, second):
    if first is None or second is None:
        return first is not second
    first_data = first.get("data") or {}
    second_data = second.get("data") or {}
    return any(first_data.get(key) != second_data.get(key) for key in DATA_KEYS)


class Result:
    """The outcome of ensure(), with the metadata the module returns and diffs."""

    def __init__(self, plan, before, after, now, source):
        self.plan = plan
        self.before = before
        self.after = after
        self.now = now
        self.source = source

    @property
    def changed(self):
        return self.plan.changes

    def before_state(self):
        return describe_secret(self.before, self.now)

    def after_state(self):
        if not self.plan.changes:
            # The diff of an unchanged Secret must be empty.
            return self.before_state()
        state = {"exists": True, "valid": True, "phase": self.plan.phase}
        state.update(self.plan.after.describe(self.now))
        return state

    def next_step(self):
        return next_step(self.plan, self.source)

    def intermediate_key_pems(self):
        """Return the intermediate keys this run read, issued or wrote, as PEM bytes.

        The keys of the Secrets before and after the run are included even when their
        bundle is invalid, so that a replaced key is masked too.
        """
        pems = [
            bundle.intermediate.key_pem
            for bundle in (self.plan.before, self.plan.after)
            if bundle is not None
        ]
        for secret in (self.before, self.after):
            if secret is not None:
                stored = read_bundle_files(secret).get(CA_KEY)
                if stored:
                    pems.append(stored)
        return pems


def describe_secret(secret, now):
    """Return metadata safe for diffs: certificates and key types, never key bytes."""
    if secret is None:
        return {"exists": False}
    files = read_bundle_files(secret)
    state = {"exists": True, "phase": None}
    try:
        bundle = validate_bundle(files, now)
    except CAError as exc:
        state["valid"] = False
        state["problem"] = str(exc)
        state["data_keys"] = sorted(files)
        return state
    state["valid"] = True
    state["phase"] = detect_phase(
        bundle, recorded_phase(secret), RootSource("new root", None)
    )
    state.update(bundle.describe(now))
    return state
