# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kubecrypt maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Decide and apply changes to the Secret that contains Cilium's IPsec key.

The decisions (create, keep, rotate, replace, fail) are pure functions of the current Secret
and the requested options, so they are unit-tested without a cluster. IPsecKeySecret applies
them through an ObjectStore, retrying once per conflicting writer, and never returns key
material unless asked.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import datetime
import re

from ansible_collections.kubecrypt.pod_encryption.plugins.module_utils._ipsec_key import (
    DEFAULT_ICV_BITS,
    DEFAULT_KEY_BITS,
    KeyLineError,
    generate_key,
    next_spi,
    parse_key_line,
    rotate_key,
    validate_icv_bits,
    validate_key_bits,
)
from ansible_collections.kubecrypt.pod_encryption.plugins.module_utils._k8s_compat import (
    HTTP_CONFLICT,
    ApiError,
)

ANNOTATION_PREFIX = "pod-encryption.kubecrypt.io/"
CREATED_AT_ANNOTATION = ANNOTATION_PREFIX + "key-created-at"
PREVIOUS_SPI_ANNOTATION = ANNOTATION_PREFIX + "previous-spi"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "kubecrypt.pod_encryption"
# Each conflicting write (HTTP 409) costs one more read and decision before the module gives up.
MAX_WRITE_ATTEMPTS = 3

REGENERATE_CHOICES = ("never", "fail", "full_idempotence", "always")

_DURATION = re.compile(r"\A(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?\Z")
_DURATION_UNITS = (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


class SecretError(Exception):
    """A condition the user has to resolve, with a message that names the fix."""


def check_location(name, namespace, data_key):
    """Raise SecretError for an empty Secret name, namespace or data key.

    The Kubernetes client treats an empty name as a list request, and an empty namespace as a
    programming error, so neither reaches the API server with a useful message.
    """
    if not namespace:
        raise SecretError(
            "namespace '' is empty: set it to the namespace of the Cilium agents, for example "
            "kube-system."
        )
    if not name:
        raise SecretError(
            "name '' is empty: set it to the Helm value encryption.ipsec.secretName, for "
            "example cilium-ipsec-keys."
        )
    if not data_key:
        raise SecretError(
            "data_key '' is empty: set it to the Helm value encryption.ipsec.keyFile, for "
            "example keys."
        )


def parse_duration(text):
    """Convert a duration such as ``90d``, ``12h`` or ``1w2d`` to seconds."""
    match = _DURATION.match(text or "")
    if not text or not match or not any(match.groups()):
        raise SecretError(
            "max_age {0!r} is not a duration: write a number followed by w, d, h, m or s, "
            "for example 90d or 12h.".format(text)
        )
    seconds = 0
    for value, (unit, factor) in zip(match.groups(), _DURATION_UNITS):
        if value:
            seconds += int(value) * factor
    if seconds == 0:
        raise SecretError("max_age {0!r} is zero: give a positive duration.".format(text))
    return seconds


def format_timestamp(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_timestamp(text):
    """Parse an RFC 3339 UTC timestamp as written by format_timestamp; None if unreadable."""
    try:
        parsed = datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ")
    except (TypeError, ValueError):
        return None
    return parsed.replace(tzinfo=datetime.timezone.utc)


class Request:
    """The validated options of one request."""

    def __init__(
        self,
        state="present",
        key_bits=None,
        icv_bits=None,
        rotate=False,
        max_age=None,
        regenerate="fail",
        rotate_from_spi=None,
    ):
        if key_bits is not None:
            _reraise(validate_key_bits, key_bits)
        if icv_bits is not None:
            _reraise(validate_icv_bits, icv_bits)
        if regenerate not in REGENERATE_CHOICES:
            raise SecretError(
                "regenerate {0!r} is invalid: use one of {1}.".format(
                    regenerate, ", ".join(REGENERATE_CHOICES)
                )
            )
        self.state = state
        self.key_bits = key_bits
        self.icv_bits = icv_bits
        self.rotate = rotate
        self.max_age_seconds = parse_duration(max_age) if max_age is not None else None
        self.regenerate = regenerate
        self.rotate_from_spi = rotate_from_spi


def _reraise(check, value):
    try:
        check(value)
    except KeyLineError as exc:
        raise SecretError(str(exc))


class Decision:
    """The action to take on the Secret and the key to write, if any."""

    KEEP = "keep"
    CREATE = "create"
    ROTATE = "rotate"
    REPLACE = "replace"
    DELETE = "delete"

    def __init__(self, action, key=None, current=None, reason="", superseded=False):
        self.action = action
        self.key = key
        self.current = current
        self.reason = reason
        # True when another writer rotated the key since the caller last read it.
        self.superseded = superseded

    @property
    def changes(self):
        return self.action != self.KEEP


def read_secret_key(secret, data_key):
    """Return the key line stored in ``secret`` under ``data_key`` as text.

    Raises SecretError naming the problem when the data key is missing or not UTF-8.
    """
    data = secret.get("data") or {}
    if data_key not in data:
        present = ", ".join(sorted(data)) or "none"
        raise SecretError(
            "Secret {0} has no data key {1!r} (data keys present: {2}). Set data_key to the "
            "key Cilium reads (encryption.ipsec.keyFile), or set regenerate to "
            "full_idempotence to write a new key.".format(
                _secret_name(secret), data_key, present
            )
        )
    try:
        return base64.b64decode(data[data_key] or "").decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        raise SecretError(
            "Secret {0} data key {1!r} is not valid base64-encoded UTF-8 text.".format(
                _secret_name(secret), data_key
            )
        )


def _secret_name(secret):
    metadata = secret.get("metadata") or {}
    return "{0}/{1}".format(metadata.get("namespace"), metadata.get("name"))


def key_age_seconds(secret, now):
    """Seconds since the current key was written, from the annotation; None if unknown."""
    annotations = (secret.get("metadata") or {}).get("annotations") or {}
    created_at = parse_timestamp(annotations.get(CREATED_AT_ANNOTATION))
    if created_at is None:
        return None
    return (now - created_at).total_seconds()


def decide(secret, data_key, request, now):
    """Return the Decision for ``secret`` (a dict or None) under ``request``.

    Raise SecretError when the existing key is invalid or differs from the request and
    ``regenerate`` does not allow replacing it.
    """
    if request.state == "absent":
        if secret is None:
            return Decision(Decision.KEEP, reason="the Secret does not exist")
        return Decision(Decision.DELETE, reason="state is absent")

    if secret is None:
        key = generate_key(
            spi=1,
            key_bits=request.key_bits or DEFAULT_KEY_BITS,
            icv_bits=request.icv_bits or DEFAULT_ICV_BITS,
        )
        return Decision(Decision.CREATE, key=key, reason="the Secret does not exist")

    try:
        current = parse_key_line(read_secret_key(secret, data_key))
    except (SecretError, KeyLineError) as exc:
        return _decide_on_invalid(secret, data_key, request, str(exc))

    mismatch = _describe_mismatch(current, request)
    if request.regenerate == "always":
        return _replacement(current, request, "regenerate is always")
    if mismatch:
        if request.regenerate == "full_idempotence":
            return _replacement(current, request, mismatch)
        if request.regenerate == "fail":
            raise SecretError(
                "The existing key in Secret {0} {1}. A rotation cannot change the key size or "
                "ICV: set key_bits and icv_bits to match it, or set regenerate to "
                "full_idempotence to replace it, then restart every Cilium agent.".format(
                    _secret_name(secret), mismatch
                )
            )

    if request.rotate and request.rotate_from_spi not in (None, current.spi):
        return Decision(
            Decision.KEEP,
            current=current,
            reason="the key is already at SPI {0}, not {1}: another writer rotated it".format(
                current.spi, request.rotate_from_spi
            ),
            superseded=True,
        )
    if request.rotate:
        return Decision(
            Decision.ROTATE, key=rotate_key(current), current=current, reason="rotate is true"
        )
    if request.max_age_seconds is not None:
        age = key_age_seconds(secret, now)
        if age is None:
            return Decision(
                Decision.ROTATE,
                key=rotate_key(current),
                current=current,
                reason="the key's creation time is not recorded",
            )
        if age >= request.max_age_seconds:
            return Decision(
                Decision.ROTATE,
                key=rotate_key(current),
                current=current,
                reason="the key is {0} s old, max_age is {1} s".format(
                    int(age), request.max_age_seconds
                ),
            )
    return Decision(Decision.KEEP, current=current, reason="the key is valid")


def _decide_on_invalid(secret, data_key, request, problem):
    if request.regenerate in ("full_idempotence", "always"):
        spi = _readable_spi(secret, data_key)
        key = generate_key(
            spi=next_spi(spi) if spi else 1,
            key_bits=request.key_bits or DEFAULT_KEY_BITS,
            icv_bits=request.icv_bits or DEFAULT_ICV_BITS,
        )
        return Decision(
            Decision.REPLACE, key=key, reason="the existing key is invalid: " + problem
        )
    raise SecretError(
        "The key in Secret {0} is invalid: {1} Nothing was changed. Fix the Secret, or set "
        "regenerate to full_idempotence to replace it with a new key (every Cilium agent "
        "then needs a restart).".format(_secret_name(secret), problem)
    )


def _readable_spi(secret, data_key):
    """Return the SPI of an invalid key line when its first field is still a valid SPI."""
    try:
        first = read_secret_key(secret, data_key).split(" ", 1)[0].rstrip("+")
        spi = int(first)
    except (SecretError, ValueError):
        return None
    return spi if 1 <= spi <= 15 else None


def _describe_mismatch(current, request):
    problems = []
    if request.key_bits is not None and current.key_bits != request.key_bits:
        problems.append(
            "is AES-{0} but key_bits is {1}".format(current.key_bits, request.key_bits)
        )
    if request.icv_bits is not None and current.icv_bits != request.icv_bits:
        problems.append(
            "has a {0}-bit ICV but icv_bits is {1}".format(current.icv_bits, request.icv_bits)
        )
    return " and ".join(problems)


def _replacement(current, request, reason):
    key = generate_key(
        spi=next_spi(current.spi),
        key_bits=request.key_bits or current.key_bits,
        icv_bits=request.icv_bits or current.icv_bits,
    )
    return Decision(Decision.REPLACE, key=key, current=current, reason=reason)


def build_secret(name, namespace, data_key, key, now, existing=None):
    """Build the Secret body for ``key``, keeping the existing object's other fields."""
    if existing is None:
        metadata = {"name": name, "namespace": namespace}
        body = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque"}
        data = {}
    else:
        metadata = dict(existing.get("metadata") or {})
        for field in ("managedFields", "creationTimestamp", "uid", "generation"):
            metadata.pop(field, None)
        body = {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": existing.get("type") or "Opaque",
        }
        data = dict(existing.get("data") or {})

    labels = dict(metadata.get("labels") or {})
    labels[MANAGED_BY_LABEL] = MANAGED_BY
    annotations = dict(metadata.get("annotations") or {})
    annotations[CREATED_AT_ANNOTATION] = format_timestamp(now)
    previous = _previous_spi_of(existing, data_key)
    if previous is not None:
        annotations[PREVIOUS_SPI_ANNOTATION] = str(previous)
    metadata["labels"] = labels
    metadata["annotations"] = annotations

    data[data_key] = base64.b64encode(key.line().encode("utf-8")).decode("ascii")
    body["metadata"] = metadata
    body["data"] = data
    return body


def _previous_spi_of(existing, data_key):
    if existing is None:
        return None
    try:
        return parse_key_line(read_secret_key(existing, data_key)).spi
    except (SecretError, KeyLineError):
        return None


class IPsecKeySecret:
    """Apply decisions to one Secret through an ObjectStore."""

    def __init__(self, store, name, namespace, data_key):
        self.store = store
        self.name = name
        self.namespace = namespace
        self.data_key = data_key

    def ensure(self, request, now_function):
        """Converge the Secret and return a Result; retries when another writer wins a race."""
        original = self.store.get(self.name, self.namespace)
        secret = original
        for attempt in range(1, MAX_WRITE_ATTEMPTS + 1):
            decision = decide(secret, self.data_key, request, now_function())
            if secret is not original and request.rotate and _rotated_since(
                original, secret, self.data_key
            ):
                # Another writer rotated the key while this run was deciding. Rotating again
                # would skip an SPI that some agents have not loaded yet, so keep theirs.
                return Result(
                    decision=Decision(
                        Decision.KEEP,
                        current=_current_key(secret, self.data_key),
                        reason="another writer rotated the key during this run",
                    ),
                    before=original,
                    after=secret,
                    data_key=self.data_key,
                    concurrent_rotation=True,
                )
            if not decision.changes:
                return Result(
                    decision,
                    original,
                    secret,
                    self.data_key,
                    concurrent_rotation=decision.superseded,
                )
            try:
                written = self._apply(decision, secret, now_function())
            except ApiError as exc:
                if exc.status == HTTP_CONFLICT and attempt < MAX_WRITE_ATTEMPTS:
                    secret = self.store.get(self.name, self.namespace)
                    continue
                if exc.status == HTTP_CONFLICT:
                    raise SecretError(
                        "Secret {0}/{1} kept changing while this run tried to write it "
                        "({2} conflicting writes); the current key was left as it is. Find "
                        "the other writer, then run again.".format(
                            self.namespace, self.name, attempt
                        )
                    )
                raise
            return Result(decision, original, written, self.data_key)
        raise AssertionError("unreachable")

    def _apply(self, decision, secret, now):
        if decision.action == Decision.DELETE:
            self.store.delete(self.name, self.namespace)
            return None
        body = build_secret(
            self.name, self.namespace, self.data_key, decision.key, now, existing=secret
        )
        if secret is None:
            return self.store.create(body, self.namespace)
        return self.store.replace(body, self.namespace)


def _current_key(secret, data_key):
    try:
        return parse_key_line(read_secret_key(secret, data_key))
    except (SecretError, KeyLineError):
        return None


def _rotated_since(original, latest, data_key):
    if original is None or latest is None:
        return False
    before = _current_key(original, data_key)
    after = _current_key(latest, data_key)
    return before is not None and after is not None and before.spi != after.spi


class Result:
    """The outcome of ensure(), with the metadata the module returns and diffs."""

    def __init__(self, decision, before, after, data_key, concurrent_rotation=False):
        self.decision = decision
        self.before = before
        self.after = after
        self.data_key = data_key
        self.concurrent_rotation = concurrent_rotation

    @property
    def changed(self):
        return self.decision.changes

    def key(self):
        """Return the key in effect after the run, either the one written or the one kept."""
        if self.decision.action == Decision.DELETE:
            return None
        if self.decision.key is not None:
            return self.decision.key
        return self.decision.current

    def before_state(self):
        return _describe_secret(self.before, _current_key_or_none(self.before, self.data_key))

    def after_state(self):
        if self.decision.action == Decision.DELETE:
            return {"exists": False}
        return _describe_secret(self.after, self.key())


def _current_key_or_none(secret, data_key):
    return None if secret is None else _current_key(secret, data_key)


def _describe_secret(secret, key):
    """Return metadata safe for diffs and results: SPI, sizes, fingerprint, never the key."""
    if secret is None:
        return {"exists": False}
    state = {"exists": True}
    if key is not None:
        state.update(key.describe())
    else:
        state["valid"] = False
    annotations = (secret.get("metadata") or {}).get("annotations") or {}
    state["created_at"] = annotations.get(CREATED_AT_ANNOTATION)
    return state
