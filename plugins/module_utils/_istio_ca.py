# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kubecrypt maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Build, validate, renew and rotate an Istio plug-in CA bundle.

A plug-in CA bundle is the content of the ``cacerts`` Secret that istiod reads from
``/etc/cacerts``. It contains the intermediate's certificate (``ca-cert.pem``) and
private key (``ca-key.pem``), and the trust bundle of one or more roots
(``root-cert.pem``). The fourth file, ``cert-chain.pem``, is the chain that istiod hands
to workloads: the intermediate first, then any further intermediates, then the root.

validate_bundle() checks a bundle the way istiod does (the chain verifies to a root, the
key matches, the intermediate is a CA, nothing has expired) and adds the checks istiod
skips but proxies need (keyCertSign, no serverAuth-only extended key usage). decide()
turns the current bundle and the requested options into a Plan: create, keep, renew,
rotate_root or replace. This file does no I/O. Its only side effect is drawing keys from
the operating system's CSPRNG.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import datetime
import math
import re
import traceback

try:
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    HAS_CRYPTOGRAPHY = True
    CRYPTOGRAPHY_IMPORT_ERROR = None
except ImportError:
    # Modules check HAS_CRYPTOGRAPHY and fail with missing_required_lib before any call here.
    HAS_CRYPTOGRAPHY = False
    CRYPTOGRAPHY_IMPORT_ERROR = traceback.format_exc()

CRYPTOGRAPHY_REQUIREMENT = "cryptography >= 41.0"
ROOT_ADVICE = (
    "Give {0} a self-signed CA certificate that is valid now, with the private key that "
    "belongs to it."
)

CA_CERT = "ca-cert.pem"
CA_KEY = "ca-key.pem"
ROOT_CERT = "root-cert.pem"
CERT_CHAIN = "cert-chain.pem"
CA_CRL = "ca-crl.pem"
DATA_KEYS = (CA_CERT, CA_KEY, ROOT_CERT, CERT_CHAIN)

KEY_TYPES = ("rsa_4096", "ecdsa_p256")
DEFAULT_KEY_TYPE = "rsa_4096"
DEFAULT_ORGANIZATION = "Istio"
ROOT_COMMON_NAME = "Root CA"
INTERMEDIATE_COMMON_NAME = "Intermediate CA"
# RFC 5280 upper bounds for the subject attributes the module writes.
MAX_LOCALITY_LENGTH = 128
MAX_ORGANIZATION_LENGTH = 64
# New certificates start this long before the time of issue, so that a host whose clock
# is a few minutes behind still accepts them.
CLOCK_SKEW_SECONDS = 300

# The same words as the regenerate option of cilium_ipsec_key and community.crypto.
REGENERATE_CHOICES = ("never", "fail", "full_idempotence", "always")

# istiod chart values that Istio's own root rotation test sets
# (tests/integration/security/cacert_rotation in istio/istio). Without
# ISTIO_MULTIROOT_MESH istiod rejects a root-cert.pem that adds or drops a root.
# PROXY_CONFIG_XDS_AGENT lets running proxies take config updates over xDS, which vendor
# write-ups name as the way they get the new trust bundle without a restart.
ROTATION_ISTIOD_VALUES = {
    "pilot": {"env": {"ISTIO_MULTIROOT_MESH": "true"}},
    "meshConfig": {
        "defaultConfig": {"proxyMetadata": {"PROXY_CONFIG_XDS_AGENT": "true"}}
    },
}

_PEM_CERTIFICATE = re.compile(
    rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL
)
_DURATION = re.compile(r"\A(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?\Z")
_DURATION_UNITS = (604800, 86400, 3600, 60, 1)
_CURVE_NAMES = {"secp256r1": "p256", "secp384r1": "p384", "secp521r1": "p521"}
# Extended key usage names by dotted OID, so that this table needs no cryptography import.
_EKU_NAMES = {
    "1.3.6.1.5.5.7.3.1": "serverAuth",
    "1.3.6.1.5.5.7.3.2": "clientAuth",
}
_UTC = datetime.timezone.utc


class CAError(Exception):
    """A bundle, root or option that cannot be used. The message gives cause and fix."""


# ---------------------------------------------------------------------------
# Durations, times and descriptions


def parse_duration(text, option):
    """Convert a duration such as ``365d``, ``12h`` or ``1w2d`` to seconds.

    ``option`` names the option in the error message.
    """
    match = _DURATION.match(text or "")
    if not text or not match or not any(match.groups()):
        raise CAError(
            "{0} {1!r} is not a duration. Write a number followed by w, d, h, m or s, "
            "for example 365d or 12h.".format(option, text)
        )
    seconds = 0
    for value, factor in zip(match.groups(), _DURATION_UNITS):
        if value:
            seconds += int(value) * factor
    if seconds == 0:
        raise CAError(
            "{0} {1!r} is zero. Give a positive duration.".format(option, text)
        )
    return seconds


def format_time(moment):
    return moment.astimezone(_UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def not_before(cert):
    """Return the start of the validity period as an aware UTC datetime."""
    value = getattr(cert, "not_valid_before_utc", None)
    if value is None:
        value = cert.not_valid_before.replace(tzinfo=_UTC)
    return value


def not_after(cert):
    """Return the end of the validity period as an aware UTC datetime."""
    value = getattr(cert, "not_valid_after_utc", None)
    if value is None:
        value = cert.not_valid_after.replace(tzinfo=_UTC)
    return value


def fingerprint(cert):
    """Return the SHA-256 fingerprint in the form openssl prints, behind ``SHA256:``."""
    digest = cert.fingerprint(hashes.SHA256()).hex().upper()
    return "SHA256:" + ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def subject_of(cert):
    return cert.subject.rfc4514_string()


def describe_key(key):
    """Name a key the way the key_type option does, for example ``ecdsa_p256``."""
    if isinstance(key, rsa.RSAPrivateKey):
        return "rsa_{0}".format(key.key_size)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return "ecdsa_" + _CURVE_NAMES.get(key.curve.name, key.curve.name)
    return type(key).__name__


def describe_certificate(cert, now):
    """Return the metadata of ``cert`` that results and diffs show."""
    remaining = (not_after(cert) - now).total_seconds()
    return {
        "subject": subject_of(cert),
        "issuer": cert.issuer.rfc4514_string(),
        "serial": format(cert.serial_number, "x"),
        "fingerprint": fingerprint(cert),
        "not_before": format_time(not_before(cert)),
        "not_after": format_time(not_after(cert)),
        "days_to_expiry": int(math.floor(remaining / 86400)),
    }


def same_certificate(first, second):
    return first.fingerprint(hashes.SHA256()) == second.fingerprint(hashes.SHA256())


def contains_certificate(certs, cert):
    return any(same_certificate(cert, candidate) for candidate in certs)


# ---------------------------------------------------------------------------
# Keys and certificates


class Authority:
    """A CA certificate together with its private key, able to sign certificates."""

    def __init__(self, cert, key, key_pem=None):
        self.cert = cert
        self.key = key
        self._key_pem = key_pem

    @property
    def key_pem(self):
        """The private key as PEM bytes: as it was read, or PKCS #8 for a new key."""
        if self._key_pem is None:
            self._key_pem = self.key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        return self._key_pem

    @property
    def cert_pem(self):
        return self.cert.public_bytes(serialization.Encoding.PEM)


def generate_private_key(key_type):
    if key_type == "rsa_4096":
        return rsa.generate_private_key(public_exponent=65537, key_size=4096)
    if key_type == "ecdsa_p256":
        return ec.generate_private_key(ec.SECP256R1())
    raise CAError(
        "key_type {0!r} is invalid. Use one of {1}.".format(
            key_type, ", ".join(KEY_TYPES)
        )
    )


def _ca_key_usage():
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )


def _authority_key_identifier(issuer_cert):
    try:
        identifier = issuer_cert.extensions.get_extension_for_class(
            x509.SubjectKeyIdentifier
        ).value
    except x509.ExtensionNotFound:
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(
            issuer_cert.public_key()
        )
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(identifier)


def _validity(builder, now, lifetime_seconds, latest=None):
    end = now + datetime.timedelta(seconds=lifetime_seconds)
    if latest is not None and end > latest:
        end = latest
    start = now - datetime.timedelta(seconds=CLOCK_SKEW_SECONDS)
    return builder.not_valid_before(start).not_valid_after(end)


def build_root(key_type, organization, lifetime_seconds, now):
    """Generate a self-signed root CA and return it as an Authority."""
    key = generate_private_key(key_type)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.COMMON_NAME, ROOT_COMMON_NAME),
        ]
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_ca_key_usage(), critical=True)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
        )
    )
    builder = _validity(builder, now, lifetime_seconds)
    return Authority(builder.sign(key, hashes.SHA256()), key)


def issue_intermediate(
    root, key_type, organization, cluster_name, namespace, lifetime_seconds, now
):
    """Issue a per-cluster intermediate CA signed by ``root`` and return it.

    The certificate carries the extensions istiod and the proxies need: a critical
    basicConstraints CA:TRUE with pathlen 0, a critical keyUsage with keyCertSign,
    cRLSign and digitalSignature, no extendedKeyUsage, and key identifiers. It never
    outlives the root. The DNS name istiod.<namespace>.svc matches the certificates
    Istio's own tooling issues.
    """
    key = generate_private_key(key_type)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.COMMON_NAME, INTERMEDIATE_COMMON_NAME),
            x509.NameAttribute(NameOID.LOCALITY_NAME, cluster_name),
        ]
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(root.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_ca_key_usage(), critical=True)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
        )
        .add_extension(_authority_key_identifier(root.cert), critical=False)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("istiod.{0}.svc".format(namespace))]
            ),
            critical=False,
        )
    )
    builder = _validity(builder, now, lifetime_seconds, latest=not_after(root.cert))
    return Authority(builder.sign(root.key, hashes.SHA256()), key)


# ---------------------------------------------------------------------------
# Parsing


def parse_certificates(data, label):
    """Parse every PEM certificate in ``data``. ``label`` names the file in errors."""
    blocks = _PEM_CERTIFICATE.findall(data or b"")
    if not blocks:
        raise CAError("{0} contains no PEM certificate block.".format(label))
    certs = []
    for position, block in enumerate(blocks, start=1):
        try:
            certs.append(x509.load_pem_x509_certificate(block))
        except ValueError:
            raise CAError(
                "Certificate {0} in {1} is not a valid X.509 certificate.".format(
                    position, label
                )
            )
    return certs


def parse_single_certificate(data, label):
    certs = parse_certificates(data, label)
    if len(certs) != 1:
        raise CAError(
            "{0} contains {1} certificates, but it must contain exactly one.".format(
                label, len(certs)
            )
        )
    return certs[0]


def parse_private_key(data, label):
    """Parse an unencrypted RSA or ECDSA private key. Errors never quote the key."""
    try:
        key = serialization.load_pem_private_key(data or b"", password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise CAError("{0} is not an unencrypted PEM private key.".format(label))
    if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
        raise CAError(
            "{0} is a {1} key, but istiod signs only with RSA or ECDSA keys.".format(
                label, type(key).__name__
            )
        )
    return key


def _public_key_bytes(public_key):
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def key_matches_certificate(key, cert):
    return _public_key_bytes(key.public_key()) == _public_key_bytes(cert.public_key())


# ---------------------------------------------------------------------------
# Checks on single certificates


def _is_ca(cert):
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def _is_self_signed(cert):
    try:
        cert.verify_directly_issued_by(cert)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def _signed_by(cert, issuer):
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def check_validity_period(cert, label, now):
    """Raise CAError when ``cert`` has expired or is not valid yet."""
    if now >= not_after(cert):
        raise CAError(
            "{0} (subject '{1}') expired at {2}. istiod rejects an expired chain with "
            "'cert chain has expired'.".format(
                label, subject_of(cert), format_time(not_after(cert))
            )
        )
    if now < not_before(cert):
        raise CAError(
            "{0} (subject '{1}') is not valid before {2}, so istiod and the proxies "
            "reject it until then. Check the clock of the host that issued it.".format(
                label, subject_of(cert), format_time(not_before(cert))
            )
        )


def check_ca_extensions(cert, label):
    """Raise CAError unless ``cert`` can sign workload certificates that proxies accept.

    istiod checks the CA flag but not keyUsage, and it accepts an extendedKeyUsage of
    serverAuth only. OpenSSL-based proxies reject the workload certificates of such a CA
    (test_istio_tls_handshake.py shows both cases), and istiod logs nothing useful.
    """
    if not _is_ca(cert):
        raise CAError(
            "{0} (subject '{1}') is not a CA because its basicConstraints extension is "
            "missing or has CA:FALSE. istiod fails with 'certificate is not authorized "
            "to sign other certificates'.".format(label, subject_of(cert))
        )
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        usage = None
    if usage is not None and not usage.key_cert_sign:
        raise CAError(
            "{0} (subject '{1}') has a keyUsage extension without keyCertSign, so the "
            "proxies reject the certificates it signs.".format(label, subject_of(cert))
        )
    _check_extended_key_usage(cert, label)


def _check_extended_key_usage(cert, label):
    try:
        usages = list(
            cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        )
    except x509.ExtensionNotFound:
        return
    if ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE in usages:
        return
    required = (ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH)
    missing = [_EKU_NAMES[oid.dotted_string] for oid in required if oid not in usages]
    if not missing:
        return
    present = [_EKU_NAMES.get(oid.dotted_string, oid.dotted_string) for oid in usages] or ["nothing"]
    raise CAError(
        "{0} (subject '{1}') has an extendedKeyUsage of {2} without {3}, so the proxies "
        "fail to connect to each other. Issue the intermediate without "
        "extendedKeyUsage, or with both serverAuth and clientAuth.".format(
            label, subject_of(cert), " and ".join(present), " and ".join(missing)
        )
    )


def check_root(cert, label, now):
    """Raise CAError unless ``cert`` is a self-signed CA within its validity period."""
    if not _is_self_signed(cert):
        raise CAError(
            "{0} (subject '{1}', issuer '{2}') is not self-signed, so it cannot be a "
            "root.".format(label, subject_of(cert), cert.issuer.rfc4514_string())
        )
    if not _is_ca(cert):
        raise CAError(
            "{0} (subject '{1}') is not a CA because its basicConstraints extension is "
            "missing or has CA:FALSE.".format(label, subject_of(cert))
        )
    check_validity_period(cert, label, now)


# ---------------------------------------------------------------------------
# Bundles


class Bundle:
    """The four files of a plug-in CA bundle, parsed.

    ``chain`` is cert-chain.pem with the intermediate first. ``issuing_root`` is the
    root in ``roots`` that the chain verifies to. ``raw`` keeps the bytes a file was
    read with, so that a file the module does not change is written back unchanged.
    """

    def __init__(self, intermediate, chain, roots, issuing_root, raw=None):
        self.intermediate = intermediate
        self.chain = chain
        self.roots = roots
        self.issuing_root = issuing_root
        self.raw = dict(raw or {})

    @classmethod
    def issued(cls, intermediate, root_cert, roots=None, raw_roots=None):
        """Build the bundle for an intermediate signed directly by ``root_cert``."""
        raw = {ROOT_CERT: raw_roots} if raw_roots is not None else {}
        return cls(
            intermediate,
            [intermediate.cert, root_cert],
            list(roots) if roots is not None else [root_cert],
            root_cert,
            raw=raw,
        )

    def with_roots(self, roots):
        """Return a copy with another trust bundle and the other files unchanged."""
        raw = {key: value for key, value in self.raw.items() if key != ROOT_CERT}
        return Bundle(self.intermediate, self.chain, roots, self.issuing_root, raw=raw)

    @property
    def signed_by_root(self):
        """Whether the intermediate was signed by the root itself, not a further CA."""
        return _signed_by(self.intermediate.cert, self.issuing_root)

    def file(self, data_key):
        if data_key in self.raw:
            return self.raw[data_key]
        if data_key == CA_CERT:
            return self.intermediate.cert_pem
        if data_key == CA_KEY:
            return self.intermediate.key_pem
        if data_key == CERT_CHAIN:
            return _pem_concat(self.chain)
        if data_key == ROOT_CERT:
            return _pem_concat(self.roots)
        raise KeyError(data_key)

    def files(self):
        return {data_key: self.file(data_key) for data_key in DATA_KEYS}

    def describe(self, now):
        """Return certificate metadata for results and diffs, and never the key."""
        return {
            "intermediate": dict(
                describe_certificate(self.intermediate.cert, now),
                key_type=describe_key(self.intermediate.key),
            ),
            "root": describe_certificate(self.issuing_root, now),
            "trust_bundle": [describe_certificate(cert, now) for cert in self.roots],
        }


def _pem_concat(certs):
    return b"".join(cert.public_bytes(serialization.Encoding.PEM) for cert in certs)


def validate_bundle(files, now):
    """Parse and check a bundle the way istiod does, and return it as a Bundle.

    ``files`` maps data keys to their bytes. Raise CAError naming the first defect
    found.
    """
    _check_data_keys(files)
    ca_cert = parse_single_certificate(files[CA_CERT], CA_CERT)
    chain = parse_certificates(files[CERT_CHAIN], CERT_CHAIN)
    roots = parse_certificates(files[ROOT_CERT], ROOT_CERT)
    ca_key = parse_private_key(files[CA_KEY], CA_KEY)
    if not key_matches_certificate(ca_key, ca_cert):
        raise CAError(
            "{0} does not match the certificate in {1}: their public keys differ.".format(
                CA_KEY, CA_CERT
            )
        )
    if not same_certificate(chain[0], ca_cert):
        raise CAError(
            "{0} does not start with the certificate in {1}. istiod expects the "
            "intermediate first, then any further intermediates, then the root.".format(
                CERT_CHAIN, CA_CERT
            )
        )

    for position, root in enumerate(roots, start=1):
        check_root(root, "Certificate {0} in {1}".format(position, ROOT_CERT), now)
    check_ca_extensions(ca_cert, CA_CERT)
    check_validity_period(ca_cert, CA_CERT, now)
    issuing_root = _verify_chain(chain, roots, now)

    raw = {data_key: files[data_key] for data_key in DATA_KEYS}
    if files.get(CA_CRL):
        raw[CA_CRL] = files[CA_CRL]
    intermediate = Authority(ca_cert, ca_key, key_pem=files[CA_KEY])
    return Bundle(intermediate, chain, roots, issuing_root, raw=raw)


def _check_data_keys(files):
    missing = [data_key for data_key in DATA_KEYS if data_key not in files]
    if missing:
        present = ", ".join(sorted(files)) or "none"
        raise CAError(
            "The data key {0} is missing (data keys present: {1}). istiod reports an "
            "incomplete signing CA bundle and cannot use it as a plug-in CA.".format(
                ", ".join("'{0}'".format(key) for key in missing), present
            )
        )
    for data_key in DATA_KEYS:
        if not files[data_key]:
            raise CAError("The data key '{0}' is empty.".format(data_key))


def _verify_chain(chain, roots, now):
    """Verify ``chain`` up to a certificate in ``roots`` and return that root."""
    current = chain[0]
    for position, cert in enumerate(chain[1:], start=2):
        label = "Certificate {0} in {1}".format(position, CERT_CHAIN)
        if _is_self_signed(cert):
            if not contains_certificate(roots, cert):
                raise CAError(
                    "{0} is the root '{1}' ({2}), which is not in {3}. The bundle mixes "
                    "certificates from different roots.".format(
                        label, subject_of(cert), fingerprint(cert), ROOT_CERT
                    )
                )
            if not _signed_by(current, cert):
                raise CAError(
                    "{0} is the root '{1}' ({2}), but that root did not sign '{3}'. "
                    "{4} must end with the root that signed the certificate before "
                    "it.".format(
                        label,
                        subject_of(cert),
                        fingerprint(cert),
                        subject_of(current),
                        CERT_CHAIN,
                    )
                )
            break
        check_ca_extensions(cert, label)
        check_validity_period(cert, label, now)
        if not _signed_by(current, cert):
            raise CAError(
                "{0} (subject '{1}') did not sign the certificate before it, '{2}'. "
                "{3} must list each certificate followed by its issuer.".format(
                    label, subject_of(cert), subject_of(current), CERT_CHAIN
                )
            )
        current = cert

    for root in roots:
        if _signed_by(current, root):
            return root
    raise CAError(
        "No root in {0} signed '{1}' (issuer '{2}'). {0} contains {3}, so the bundle "
        "mixes certificates from different roots.".format(
            ROOT_CERT,
            subject_of(current),
            current.issuer.rfc4514_string(),
            ", ".join(fingerprint(root) for root in roots),
        )
    )


def load_authority(cert_pem, key_pem, label, now):
    """Parse and check a root CA given by the user. ``label`` names its options."""
    try:
        cert = parse_single_certificate(cert_pem, "The certificate of " + label)
        key = parse_private_key(key_pem, "The private key of " + label)
        if not key_matches_certificate(key, cert):
            raise CAError(
                "The private key of {0} does not match its certificate: their public keys "
                "differ.".format(label)
            )
        check_root(cert, "The certificate of " + label, now)
    except CAError as exc:
        raise CAError("{0} {1}".format(exc, ROOT_ADVICE.format(label)))
    return Authority(cert, key, key_pem=key_pem)


def parse_roots_leniently(data):
    """Return the roots in ``data``, or an empty list when it cannot be parsed."""
    try:
        return parse_certificates(data, ROOT_CERT)
    except CAError:
        return []


# ---------------------------------------------------------------------------
# Decisions


class Request:
    """The options of one run, validated."""

    def __init__(
        self,
        cluster_name,
        namespace="istio-system",
        organization=None,
        key_type=None,
        intermediate_lifetime="365d",
        root_lifetime="3650d",
        renew_before="30d",
        rotate_root=False,
        regenerate="fail",
    ):
        _check_subject_value("cluster_name", cluster_name, MAX_LOCALITY_LENGTH)
        if organization is not None:
            _check_subject_value("organization", organization, MAX_ORGANIZATION_LENGTH)
        _check_choices(key_type, regenerate, rotate_root)

        self.cluster_name = cluster_name
        self.namespace = namespace
        self.organization = organization
        self.key_type = key_type
        self.intermediate_lifetime = parse_duration(
            intermediate_lifetime, "intermediate_lifetime"
        )
        self.root_lifetime = parse_duration(root_lifetime, "root_lifetime")
        self.renew_before_text = renew_before
        self.renew_before = parse_duration(renew_before, "renew_before")
        if self.renew_before >= self.intermediate_lifetime:
            raise CAError(
                "renew_before {0!r} must be shorter than intermediate_lifetime {1!r}, "
                "or every run would renew the intermediate.".format(
                    renew_before, intermediate_lifetime
                )
            )
        self.rotate_root = rotate_root
        self.regenerate = regenerate


def _check_choices(key_type, regenerate, rotate_root):
    if key_type is not None and key_type not in KEY_TYPES:
        raise CAError(
            "key_type {0!r} is invalid. Use one of {1}.".format(
                key_type, ", ".join(KEY_TYPES)
            )
        )
    if regenerate not in REGENERATE_CHOICES:
        raise CAError(
            "regenerate {0!r} is invalid. Use one of {1}.".format(
                regenerate, ", ".join(REGENERATE_CHOICES)
            )
        )
    if rotate_root and regenerate == "always":
        raise CAError(
            "rotate_root cannot be combined with regenerate=always, because a new "
            "intermediate on every run would skip the rotation phases. Set "
            "regenerate to fail while you rotate the root."
        )


def _check_subject_value(option, value, maximum):
    if not value or not value.strip():
        raise CAError("{0} is empty. Give a non-empty name.".format(option))
    if len(value) > maximum:
        raise CAError(
            "{0} {1!r} has {2} characters, but X.509 allows at most {3}.".format(
                option, value, len(value), maximum
            )
        )


class RootSource:
    """The source of a root CA: loaded, generated on first use, or not given.

    ``kind`` is ``root`` or ``new root`` and ``options`` names the options that supply
    it. ``persist`` is set when the root comes from files. The backend calls it to write
    a root that this run generated. After a run that generated the root, ``generated``
    contains it.
    """

    def __init__(self, kind, options, authority=None, can_generate=False, persist=None):
        self.kind = kind
        self.options = options
        self.authority = authority
        self.can_generate = can_generate
        self.persist = persist
        self.generated = None

    @property
    def given(self):
        return self.authority is not None or self.can_generate

    def obtain(self, request, now):
        """Return the root, generating it when its files do not exist yet."""
        if self.authority is not None:
            return self.authority
        if not self.can_generate:
            raise CAError(
                "This run needs the {0} CA, but none was given. Set {1}_cert_path and "
                "{1}_key_path to have the module generate one and keep its key in those "
                "files, or set {1}_cert and {1}_key to a root of your own.".format(
                    self.kind, self.kind.replace(" ", "_")
                )
            )
        if self.generated is None:
            self.generated = build_root(
                request.key_type or DEFAULT_KEY_TYPE,
                request.organization or DEFAULT_ORGANIZATION,
                request.root_lifetime,
                now,
            )
        return self.generated

    def mark_persisted(self):
        """Treat the generated root from now on as if it had been loaded from files."""
        self.authority = self.generated
        self.can_generate = False

    def matches(self, cert):
        return self.authority is not None and same_certificate(
            self.authority.cert, cert
        )


class Plan:
    """The operation a run applies to the bundle, its reason and the result."""

    CREATE = "create"
    KEEP = "keep"
    RENEW = "renew"
    ROTATE_ROOT = "rotate_root"
    REPLACE = "replace"

    def __init__(self, operation, reason, phase, before, after, warnings=None):
        self.operation = operation
        self.reason = reason
        self.phase = phase
        self.before = before
        self.after = after
        self.warnings = list(warnings or [])
        self.generated = []
        self.before_problem = None
        self.root_changed = False
        self.root_options_current = False

    @property
    def changes(self):
        return self.operation != self.KEEP


def detect_phase(bundle, recorded_phase, new_root):
    """Return the root rotation phase (1 to 4) that ``bundle`` is in.

    With one root the bundle is in phase 1, or in phase 4 when the annotation records
    that a rotation ended there. With several roots the new one is the root from the new
    root options when it is in the trust bundle, else the last one, and the phase is 3
    once that root has signed the intermediate and 2 before.
    """
    if len(bundle.roots) == 1:
        return 4 if recorded_phase == 4 else 1
    newest = bundle.roots[-1]
    if new_root.authority is not None and contains_certificate(
        bundle.roots, new_root.authority.cert
    ):
        newest = new_root.authority.cert
    return 3 if same_certificate(bundle.issuing_root, newest) else 2


def decide(files, recorded_phase, request, root, new_root, now, source):
    """Return the Plan for the bundle ``files``, a dict or None when there is no Secret.

    ``root`` and ``new_root`` are RootSources and ``source`` names the Secret in
    messages. Raise CAError when the bundle is invalid or differs from the request and
    ``regenerate`` does not allow replacing it, or when a needed root is missing.
    """
    if files is None:
        return _plan_create(request, root, now)
    try:
        bundle = validate_bundle(files, now)
    except CAError as exc:
        return _plan_for_invalid(files, request, root, now, source, str(exc))

    phase = detect_phase(bundle, recorded_phase, new_root)
    drift = _describe_root_drift(bundle, root, new_root, source)
    if drift:
        if request.regenerate in ("full_idempotence", "always"):
            return _plan_full_replacement(files, request, root, now, source, drift)
        if request.regenerate == "fail":
            raise CAError(
                "{0} Nothing was changed. To move the bundle to another root without "
                "breaking mutual TLS, use rotate_root. To replace the whole bundle at "
                "once, set regenerate to full_idempotence, then restart istiod and every "
                "workload.".format(drift)
            )
        plan = _plan_keep(bundle, request, root, new_root, phase, now, source)
        plan.warnings.append(
            drift + " The bundle was kept because regenerate is never."
        )
        return plan

    mismatch = _describe_mismatch(bundle, request)
    if request.regenerate == "always":
        return _plan_new_intermediate(
            bundle,
            request,
            root,
            new_root,
            phase,
            now,
            source,
            Plan.REPLACE,
            "regenerate is always",
        )
    if mismatch and request.regenerate == "full_idempotence":
        return _plan_new_intermediate(
            bundle, request, root, new_root, phase, now, source, Plan.REPLACE, mismatch
        )
    if mismatch and request.regenerate == "fail":
        raise CAError(
            "The intermediate in {0} {1}. Nothing was changed. Set the options to match "
            "it, or set regenerate to full_idempotence to issue a new intermediate from "
            "the same root.".format(source, mismatch)
        )

    renewal = _renewal_reason(bundle, request, now)
    if renewal:
        return _plan_new_intermediate(
            bundle, request, root, new_root, phase, now, source, Plan.RENEW, renewal
        )
    if request.rotate_root:
        return _plan_rotation_step(bundle, request, new_root, phase, now, source)
    return _plan_keep(bundle, request, root, new_root, phase, now, source)


def _plan_create(request, root, now):
    authority = root.obtain(request, now)
    intermediate = _issue_for_request(authority, request, None, now)
    plan = Plan(
        Plan.CREATE,
        "the Secret does not exist",
        1,
        None,
        Bundle.issued(intermediate, authority.cert),
    )
    _record_generated(plan, root)
    if request.rotate_root:
        plan.warnings.append(
            "rotate_root has no effect on the run that creates the Secret. The bundle "
            "starts in phase 1, and the next run with rotate_root=true moves it to phase 2."
        )
    return plan


def _plan_for_invalid(files, request, root, now, source, problem):
    if request.regenerate in ("full_idempotence", "always"):
        plan = _plan_full_replacement(
            files, request, root, now, source, "the bundle is invalid: " + problem
        )
        plan.before_problem = problem
        return plan
    raise CAError(
        "{0} is invalid. {1} Nothing was changed. Fix the Secret, or set regenerate to "
        "full_idempotence to replace the bundle with a new intermediate and the root "
        "from the root options.".format(source, problem)
    )


def _plan_full_replacement(files, request, root, now, source, reason):
    """Replace the whole bundle with a new intermediate from the root options."""
    _reject_files_with_crl(files, source)
    authority = root.obtain(request, now)
    intermediate = _issue_for_request(authority, request, None, now)
    previous_roots = parse_roots_leniently(files.get(ROOT_CERT))
    plan = Plan(
        Plan.REPLACE, reason, 1, None, Bundle.issued(intermediate, authority.cert)
    )
    _record_generated(plan, root)
    unchanged = len(previous_roots) == 1 and same_certificate(
        previous_roots[0], authority.cert
    )
    if not unchanged:
        plan.root_changed = True
        plan.warnings.append(
            "The trust bundle changed in one step. Restart istiod, which rejects a new "
            "root-cert.pem while ISTIO_MULTIROOT_MESH is off, then every workload, "
            "gateway and ztunnel, because proxies that hold only the old root reject "
            "certificates from the new one."
        )
    return plan


def _plan_new_intermediate(
    bundle, request, root, new_root, phase, now, source, operation, reason
):
    """Issue a new intermediate from the root that signed the current one."""
    authority = _signing_authority(bundle, root, new_root, source, reason)
    _reject_files_with_crl(bundle.raw, source)
    intermediate = _issue_for_request(authority, request, bundle, now)
    after = Bundle.issued(
        intermediate,
        authority.cert,
        roots=bundle.roots,
        raw_roots=bundle.raw.get(ROOT_CERT),
    )
    plan = Plan(operation, reason, phase, bundle, after)
    plan.warnings.extend(_expiry_warnings(after, request, phase, now))
    return plan


def _plan_rotation_step(bundle, request, new_root, phase, now, source):
    if phase in (1, 4):
        return _plan_add_new_root(bundle, request, new_root, phase, now, source)
    if phase == 2:
        return _plan_switch_intermediate(bundle, request, new_root, now, source)
    return _plan_drop_old_roots(bundle, request, new_root, now, source)


def _plan_add_new_root(bundle, request, new_root, phase, now, source):
    """Phase 1 to 2: trust the old and the new root, keep the old intermediate."""
    if not new_root.given:
        raise CAError(
            "rotate_root needs the new root. Set new_root_cert_path and "
            "new_root_key_path to have the module generate it and keep its key in those "
            "files, or set new_root_cert and new_root_key to a root of your own."
        )
    if new_root.matches(bundle.issuing_root):
        if phase == 4:
            plan = _plan_keep(bundle, request, None, new_root, phase, now, source)
            plan.reason = "the root rotation is complete"
            return plan
        raise CAError(
            "The new root ({0}) is the root that {1} already uses, so there is nothing to "
            "rotate to. Supply a different new root, or set rotate_root to "
            "false.".format(fingerprint(bundle.issuing_root), source)
        )
    authority = new_root.obtain(request, now)
    after = bundle.with_roots(bundle.roots + [authority.cert])
    plan = Plan(
        Plan.ROTATE_ROOT,
        "rotate_root is true: the new root joins the trust bundle",
        2,
        bundle,
        after,
    )
    _record_generated(plan, new_root)
    return plan


def _plan_switch_intermediate(bundle, request, new_root, now, source):
    """Phase 2 to 3: issue the intermediate from the new root, keep both roots."""
    newest = bundle.roots[-1]
    if new_root.authority is None:
        raise CAError(
            "Phase 3 of the root rotation issues the intermediate from the new root "
            "({0}), so it needs that root's key. Set new_root_cert_path and "
            "new_root_key_path, or new_root_cert and new_root_key, to the new root that "
            "phase 2 added.".format(fingerprint(newest))
        )
    if not contains_certificate(bundle.roots, new_root.authority.cert):
        raise CAError(
            "The new root ({0}) is not in root-cert.pem of {1}, which contains {2}. "
            "Supply the new root that phase 2 added.".format(
                fingerprint(new_root.authority.cert),
                source,
                ", ".join(fingerprint(cert) for cert in bundle.roots),
            )
        )
    _reject_files_with_crl(bundle.raw, source)
    authority = new_root.authority
    intermediate = _issue_for_request(authority, request, bundle, now)
    after = Bundle.issued(
        intermediate,
        authority.cert,
        roots=bundle.roots,
        raw_roots=bundle.raw.get(ROOT_CERT),
    )
    plan = Plan(
        Plan.ROTATE_ROOT,
        "rotate_root is true: the new root signs a new intermediate",
        3,
        bundle,
        after,
    )
    return plan


def _plan_drop_old_roots(bundle, request, new_root, now, source):
    """Phase 3 to 4: trust only the root that signed the intermediate."""
    if new_root.authority is not None and not new_root.matches(bundle.issuing_root):
        raise CAError(
            "The new root ({0}) did not sign the intermediate in {1}, which the root "
            "{2} signed. Supply the new root that phase 2 added.".format(
                fingerprint(new_root.authority.cert),
                source,
                fingerprint(bundle.issuing_root),
            )
        )
    after = bundle.with_roots([bundle.issuing_root])
    plan = Plan(
        Plan.ROTATE_ROOT,
        "rotate_root is true: the old root leaves the trust bundle",
        4,
        bundle,
        after,
    )
    return plan


def _plan_keep(bundle, request, root, new_root, phase, now, source):
    plan = Plan(Plan.KEEP, "the bundle is valid", phase, bundle, bundle)
    plan.root_options_current = root is not None and root.matches(bundle.issuing_root)
    plan.warnings.extend(_expiry_warnings(bundle, request, phase, now))
    if root is not None and root.can_generate:
        plan.warnings.append(
            "The files of the {0} ({1}) do not exist, so this module cannot renew the "
            "intermediate of {2}, which expires at {3}. Restore them from your "
            "backup.".format(
                root.kind,
                root.options,
                source,
                format_time(not_after(bundle.intermediate.cert)),
            )
        )
    return plan


def _record_generated(plan, source):
    if source.generated is not None:
        plan.generated.append(source)


def _issue_for_request(authority, request, current, now):
    """Issue an intermediate for ``request``.

    Options that the request leaves unset keep their values from ``current``.
    """
    key_type = request.key_type
    organization = request.organization
    if current is not None:
        existing_type = describe_key(current.intermediate.key)
        if key_type is None and existing_type in KEY_TYPES:
            key_type = existing_type
        if organization is None:
            organization = _name_value(
                current.intermediate.cert, NameOID.ORGANIZATION_NAME
            )
    return issue_intermediate(
        authority,
        key_type or DEFAULT_KEY_TYPE,
        organization or DEFAULT_ORGANIZATION,
        request.cluster_name,
        request.namespace,
        request.intermediate_lifetime,
        now,
    )


def _signing_authority(bundle, root, new_root, source, reason):
    if not bundle.signed_by_root:
        raise CAError(
            "The intermediate in {0} was signed by a further intermediate ('{1}'), not by "
            "a root. This module issues intermediates only directly from a root, so it "
            "cannot act on: {2}.".format(
                source, bundle.intermediate.cert.issuer.rfc4514_string(), reason
            )
        )
    for candidate in (root, new_root):
        if candidate is not None and candidate.matches(bundle.issuing_root):
            return candidate.authority
    raise CAError(
        "A new intermediate is needed ({0}), but the key of the root that signed the "
        "current one ('{1}', {2}) was not given. Set root_cert_path and root_key_path, or "
        "root_cert and root_key, to that root. During a root rotation the new root "
        "options may supply it instead.".format(
            reason, subject_of(bundle.issuing_root), fingerprint(bundle.issuing_root)
        )
    )


def _reject_files_with_crl(files, source):
    # istiod requires ca-crl.pem to contain a CRL signed by every CA in cert-chain.pem,
    # so a new intermediate without a new CRL would make istiod reject the whole bundle.
    if files.get(CA_CRL):
        raise CAError(
            "{0} has a {1} data key. istiod requires a CRL signed by every CA in {2}, and "
            "this module does not issue CRLs, so a new intermediate would make istiod "
            "reject the bundle. Remove {1} or replace the intermediate yourself.".format(
                source, CA_CRL, CERT_CHAIN
            )
        )


def _name_value(cert, oid):
    values = cert.subject.get_attributes_for_oid(oid)
    return values[0].value if values else None


def _describe_mismatch(bundle, request):
    """Describe how the intermediate differs from the options that are set, or ''."""
    cert = bundle.intermediate.cert
    problems = []
    locality = _name_value(cert, NameOID.LOCALITY_NAME)
    if locality != request.cluster_name:
        problems.append(
            "has L={0!r} but cluster_name is {1!r}".format(
                locality, request.cluster_name
            )
        )
    organization = _name_value(cert, NameOID.ORGANIZATION_NAME)
    if request.organization is not None and organization != request.organization:
        problems.append(
            "has O={0!r} but organization is {1!r}".format(
                organization, request.organization
            )
        )
    key_type = describe_key(bundle.intermediate.key)
    if request.key_type is not None and key_type != request.key_type:
        problems.append(
            "has a {0} key but key_type is {1}".format(key_type, request.key_type)
        )
    return " and ".join(problems)


def _describe_root_drift(bundle, root, new_root, source):
    """Describe a root from the root options that the trust bundle lacks, or ''.

    After a completed rotation the old root may stay in the root options while the new
    root options name the only root left, so that case is not drift.
    """
    if root.authority is None or contains_certificate(
        bundle.roots, root.authority.cert
    ):
        return ""
    if len(bundle.roots) == 1 and new_root.matches(bundle.roots[0]):
        return ""
    return (
        "The root from {0} ({1}) is not in root-cert.pem of {2}, which contains {3}. "
        "After a completed root rotation, point the root options at the new root.".format(
            root.options,
            fingerprint(root.authority.cert),
            source,
            ", ".join(fingerprint(cert) for cert in bundle.roots),
        )
    )


def _renewal_reason(bundle, request, now):
    """Return why the intermediate needs renewing, or '' when it does not.

    A new intermediate cannot outlive its root, so when the root ends no later than the
    current intermediate a renewal gains nothing and the module warns instead.
    """
    cert = bundle.intermediate.cert
    remaining = (not_after(cert) - now).total_seconds()
    if remaining > request.renew_before:
        return ""
    if not_after(bundle.issuing_root) <= not_after(cert):
        return ""
    return "the intermediate expires at {0}, within renew_before {1}".format(
        format_time(not_after(cert)), request.renew_before_text
    )


def _expiry_warnings(bundle, request, phase, now):
    """Warn when the root expires within renew_before, unless a rotation runs."""
    if request.rotate_root or phase in (2, 3):
        return []
    root = bundle.issuing_root
    remaining = (not_after(root) - now).total_seconds()
    if remaining > request.renew_before:
        return []
    return [
        "The root '{0}' ({1}) expires at {2}, and the intermediate cannot outlive it. "
        "Rotate the root with rotate_root before then.".format(
            subject_of(root), fingerprint(root), format_time(not_after(root))
        )
    ]


def next_step(plan, source):
    """Say what the user has to do after ``plan`` was applied."""
    if plan.operation == Plan.CREATE:
        return (
            "Install istiod now, or, if it already runs, restart it so that it loads the "
            "plug-in CA from {0}, then restart the workloads so that they get "
            "certificates from the new intermediate.".format(source)
        )
    if plan.operation == Plan.REPLACE and plan.root_changed:
        return (
            "Restart istiod, then every workload, gateway and ztunnel, because the trust "
            "bundle changed in one step."
        )
    if plan.operation in (Plan.RENEW, Plan.REPLACE):
        return (
            "Nothing is needed: istiod reloads the new intermediate, and workloads move "
            "to it as their certificates renew, within the workload certificate TTL "
            "(24 h by default)."
        )
    return _rotation_next_step(plan)


def _rotation_next_step(plan):
    if plan.phase == 2:
        return (
            "Wait until every proxy trusts both roots: with PROXY_CONFIG_XDS_AGENT istiod "
            "pushes the trust bundle to running proxies, else restart the workloads, "
            "gateways and ztunnel. Then run again with rotate_root=true to issue the "
            "intermediate from the new root (phase 3)."
        )
    if plan.phase == 3:
        return (
            "Wait until every workload certificate comes from the new intermediate, "
            "which takes the workload certificate TTL (24 h by default), or restart the "
            "workloads, gateways and ztunnel. Then run again with rotate_root=true to "
            "remove the old root (phase 4)."
        )
    if plan.phase == 4 and not plan.root_options_current:
        return (
            "The root rotation is complete. Point the root options at the new root, drop "
            "the new root options and set rotate_root to false."
        )
    return "Nothing is needed."


def other_key_encodings(key_pem):
    """Return the PKCS #8 and traditional PEM forms of the same key."""
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError):
        return set()
    forms = set()
    for private_format in (
        serialization.PrivateFormat.PKCS8,
        serialization.PrivateFormat.TraditionalOpenSSL,
    ):
        pem = key.private_bytes(
            serialization.Encoding.PEM, private_format, serialization.NoEncryption()
        )
        forms.add(pem.decode("ascii"))
        forms.add(base64.b64encode(pem).decode("ascii"))
    return forms
