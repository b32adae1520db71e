"""Unit tests for the Istio plug-in CA: build, validate, renew and rotate bundles.

Every certificate here is real X.509, built with cryptography. Time is a fixed NOW,
passed in explicitly, so validity checks are exact.
"""

import base64
import datetime
import json
import os
import stat

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ansible_collections.kubecrypt.pod_encryption.plugins.module_utils import (
    _istio_ca as ca,
)
from ansible_collections.kubecrypt.pod_encryption.plugins.module_utils._cacerts_secret import (
    PHASE_ANNOTATION,
    RootFiles,
    SecretError,
    build_secret,
    read_bundle_files,
    recorded_phase,
    root_source,
)

NOW = datetime.datetime(2026, 12, 4, 12, 0, 0, tzinfo=datetime.timezone.utc)
DAY = datetime.timedelta(days=1)
SOURCE = "Secret istio-system/cacerts"
INTERMEDIATE_SUBJECT = "L=c1,CN=Intermediate CA,O=Istio"


def ecdsa_request(**options):
    options.setdefault("key_type", "ecdsa_p256")
    return ca.Request("c1", **options)


def new_root(lifetime_days=3650, now=NOW):
    return ca.build_root("ecdsa_p256", "Istio", lifetime_days * 86400, now)


def new_intermediate(root, lifetime_days=365, now=NOW, cluster_name="c1"):
    return ca.issue_intermediate(
        root,
        "ecdsa_p256",
        "Istio",
        cluster_name,
        "istio-system",
        lifetime_days * 86400,
        now,
    )


def pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


def bundle_files(intermediate, root, roots=None, chain=None, key_pem=None):
    """Return the four data keys of a bundle, with overrides for defect tests."""
    roots = roots if roots is not None else [root.cert]
    chain = chain if chain is not None else [intermediate.cert, root.cert]
    return {
        ca.CA_CERT: pem(intermediate.cert),
        ca.CA_KEY: key_pem if key_pem is not None else intermediate.key_pem,
        ca.CERT_CHAIN: b"".join(pem(cert) for cert in chain),
        ca.ROOT_CERT: b"".join(pem(cert) for cert in roots),
    }


def custom_ca_cert(
    issuer,
    key=None,
    subject=None,
    basic_constraints=x509.BasicConstraints(ca=True, path_length=0),
    key_cert_sign=True,
    extended_key_usage=None,
    not_before_at=NOW - DAY,
    not_after_at=NOW + 365 * DAY,
):
    """Sign a CA certificate with chosen defects. ``issuer`` None means self-signed."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    subject = subject or x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Istio"),
            x509.NameAttribute(NameOID.COMMON_NAME, "Intermediate CA"),
            x509.NameAttribute(NameOID.LOCALITY_NAME, "c1"),
        ]
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before_at)
        .not_valid_after(not_after_at)
    )
    if basic_constraints is not None:
        builder = builder.add_extension(basic_constraints, critical=True)
    builder = builder.add_extension(
        x509.KeyUsage(
            digital_signature=True,
            content_commitment=False,
            key_encipherment=False,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=key_cert_sign,
            crl_sign=True,
            encipher_only=False,
            decipher_only=False,
        ),
        critical=True,
    )
    if extended_key_usage is not None:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage(extended_key_usage), critical=False
        )
    signer = issuer.key if issuer else key
    return ca.Authority(builder.sign(signer, hashes.SHA256()), key)


@pytest.fixture(scope="module")
def root():
    return new_root()


@pytest.fixture(scope="module")
def other_root():
    return new_root()


@pytest.fixture(scope="module")
def intermediate(root):
    return new_intermediate(root)


def loaded(authority, kind="root"):
    return ca.RootSource(
        kind, kind.replace(" ", "_") + "_cert and key", authority=authority
    )


def absent(kind="new root"):
    return ca.RootSource(kind, None)


def generatable(kind="root"):
    return ca.RootSource(kind, kind.replace(" ", "_") + "_cert_path", can_generate=True)


# ---------------------------------------------------------------------------
# Building


def test_intermediate_is_path_length_zero_ca(root, intermediate):
    constraints = intermediate.cert.extensions.get_extension_for_class(
        x509.BasicConstraints
    )
    assert constraints.critical is True
    assert constraints.value.ca is True
    assert constraints.value.path_length == 0


def test_intermediate_key_usage(intermediate):
    usage = intermediate.cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical is True
    assert usage.value.key_cert_sign is True
    assert usage.value.crl_sign is True
    assert usage.value.digital_signature is True
    assert usage.value.key_encipherment is False


def test_intermediate_has_no_extended_key_usage(intermediate):
    with pytest.raises(x509.ExtensionNotFound):
        intermediate.cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)


def test_intermediate_key_identifiers(root, intermediate):
    subject_id = intermediate.cert.extensions.get_extension_for_class(
        x509.SubjectKeyIdentifier
    ).value
    authority_id = intermediate.cert.extensions.get_extension_for_class(
        x509.AuthorityKeyIdentifier
    ).value
    root_id = root.cert.extensions.get_extension_for_class(
        x509.SubjectKeyIdentifier
    ).value
    expected = x509.SubjectKeyIdentifier.from_public_key(intermediate.key.public_key())
    assert subject_id.digest == expected.digest
    assert authority_id.key_identifier == root_id.digest


def test_intermediate_subject_and_dns_name(intermediate):
    subject = intermediate.cert.subject
    assert subject.get_attributes_for_oid(NameOID.LOCALITY_NAME)[0].value == "c1"
    assert subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "Istio"
    assert subject.rfc4514_string() == INTERMEDIATE_SUBJECT
    names = intermediate.cert.extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    ).value
    assert names.get_values_for_type(x509.DNSName) == ["istiod.istio-system.svc"]


def test_intermediate_signed_by_root(root, intermediate):
    intermediate.cert.verify_directly_issued_by(root.cert)
    assert intermediate.cert.issuer == root.cert.subject


def test_intermediate_lifetime_and_backdating(intermediate):
    assert ca.not_after(intermediate.cert) == NOW + 365 * DAY
    assert ca.not_before(intermediate.cert) == NOW - datetime.timedelta(seconds=300)


def test_intermediate_never_outlives_root():
    short_root = new_root(lifetime_days=10)
    long_intermediate = new_intermediate(short_root, lifetime_days=365)
    assert ca.not_after(long_intermediate.cert) == ca.not_after(short_root.cert)


def test_root_is_self_signed_ca(root):
    root.cert.verify_directly_issued_by(root.cert)
    constraints = root.cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical is True
    assert constraints.value.ca is True
    assert root.cert.subject.rfc4514_string() == "CN=Root CA,O=Istio"


def test_rsa_4096_keys():
    rsa_root = ca.build_root("rsa_4096", "Istio", 86400 * 30, NOW)
    rsa_intermediate = ca.issue_intermediate(
        rsa_root, "rsa_4096", "Istio", "c1", "istio-system", 86400 * 10, NOW
    )
    assert rsa_root.key.key_size == 4096
    assert rsa_intermediate.key.key_size == 4096
    assert ca.describe_key(rsa_intermediate.key) == "rsa_4096"
    rsa_intermediate.cert.verify_directly_issued_by(rsa_root.cert)


def test_ecdsa_p256_keys(intermediate):
    assert intermediate.key.curve.name == "secp256r1"
    assert ca.describe_key(intermediate.key) == "ecdsa_p256"


def test_new_key_is_pkcs8_pem(intermediate):
    assert intermediate.key_pem.startswith(b"-----BEGIN PRIVATE KEY-----\n")


def test_cert_chain_is_intermediate_then_root(root, intermediate):
    files = ca.Bundle.issued(intermediate, root.cert).files()
    assert files[ca.CERT_CHAIN] == pem(intermediate.cert) + pem(root.cert)
    assert files[ca.ROOT_CERT] == pem(root.cert)
    assert files[ca.CA_CERT] == pem(intermediate.cert)
    assert files[ca.CA_KEY] == intermediate.key_pem


def test_describe_never_contains_key(root, intermediate):
    described = json.dumps(ca.Bundle.issued(intermediate, root.cert).describe(NOW))
    assert "PRIVATE KEY" not in described
    assert intermediate.key_pem.decode() not in described


def test_describe_certificate_fields(intermediate):
    described = ca.describe_certificate(intermediate.cert, NOW)
    assert described["subject"] == INTERMEDIATE_SUBJECT
    assert described["issuer"] == "CN=Root CA,O=Istio"
    assert described["serial"] == format(intermediate.cert.serial_number, "x")
    digest = intermediate.cert.fingerprint(hashes.SHA256()).hex().upper()
    assert described["fingerprint"].replace(":", "") == "SHA256" + digest
    assert described["not_after"] == "2027-12-04T12:00:00Z"
    assert described["days_to_expiry"] == 365


# ---------------------------------------------------------------------------
# Validation: every defect with its exact message


def test_valid_bundle_passes(root, intermediate):
    bundle = ca.validate_bundle(bundle_files(intermediate, root), NOW)
    assert ca.same_certificate(bundle.issuing_root, root.cert)
    assert bundle.signed_by_root is True


def invalid(files, now=NOW):
    with pytest.raises(ca.CAError) as caught:
        ca.validate_bundle(files, now)
    return str(caught.value)


def test_expired_intermediate(root):
    expired = custom_ca_cert(
        root, not_before_at=NOW - 400 * DAY, not_after_at=NOW - DAY
    )
    assert invalid(bundle_files(expired, root)) == (
        "ca-cert.pem (subject '{0}') expired at 2026-12-03T12:00:00Z. istiod rejects an "
        "expired chain with 'cert chain has expired'.".format(INTERMEDIATE_SUBJECT)
    )


def test_intermediate_expired_at_exact_end(root):
    ending = custom_ca_cert(root, not_after_at=NOW)
    assert "expired at 2026-12-04T12:00:00Z" in invalid(bundle_files(ending, root))


def test_not_yet_valid_intermediate(root):
    future = custom_ca_cert(root, not_before_at=NOW + DAY, not_after_at=NOW + 30 * DAY)
    assert invalid(bundle_files(future, root)) == (
        "ca-cert.pem (subject '{0}') is not valid before 2026-12-05T12:00:00Z, so istiod "
        "and the proxies reject it until then. Check the clock of the host that issued "
        "it.".format(INTERMEDIATE_SUBJECT)
    )


def test_expired_root(intermediate):
    old_root = new_root(lifetime_days=10, now=NOW - 20 * DAY)
    old_intermediate = new_intermediate(old_root, lifetime_days=5, now=NOW - 20 * DAY)
    message = invalid(bundle_files(old_intermediate, old_root))
    assert message == (
        "Certificate 1 in root-cert.pem (subject 'CN=Root CA,O=Istio') expired at "
        "2026-11-24T12:00:00Z. istiod rejects an expired chain with 'cert chain has "
        "expired'."
    )


def test_key_not_matching_certificate(root, intermediate):
    other = new_intermediate(root)
    files = bundle_files(intermediate, root, key_pem=other.key_pem)
    assert invalid(files) == (
        "ca-key.pem does not match the certificate in ca-cert.pem: their public keys "
        "differ."
    )


def test_intermediate_without_basic_constraints(root):
    not_ca = custom_ca_cert(root, basic_constraints=None)
    assert invalid(bundle_files(not_ca, root)) == (
        "ca-cert.pem (subject '{0}') is not a CA because its basicConstraints extension "
        "is missing or has CA:FALSE. istiod fails with 'certificate is not authorized to "
        "sign other certificates'.".format(INTERMEDIATE_SUBJECT)
    )


def test_intermediate_with_ca_false(root):
    not_ca = custom_ca_cert(
        root, basic_constraints=x509.BasicConstraints(ca=False, path_length=None)
    )
    assert "is not a CA because" in invalid(bundle_files(not_ca, root))


def test_intermediate_without_key_cert_sign(root):
    no_signing = custom_ca_cert(root, key_cert_sign=False)
    assert invalid(bundle_files(no_signing, root)) == (
        "ca-cert.pem (subject '{0}') has a keyUsage extension without keyCertSign, so the "
        "proxies reject the certificates it signs.".format(INTERMEDIATE_SUBJECT)
    )


def test_intermediate_with_server_auth_only(root):
    server_only = custom_ca_cert(
        root, extended_key_usage=[ExtendedKeyUsageOID.SERVER_AUTH]
    )
    assert invalid(bundle_files(server_only, root)) == (
        "ca-cert.pem (subject '{0}') has an extendedKeyUsage of serverAuth without "
        "clientAuth, so the proxies fail to connect to each other. Issue the intermediate "
        "without extendedKeyUsage, or with both serverAuth and clientAuth.".format(
            INTERMEDIATE_SUBJECT
        )
    )


def test_intermediate_with_client_auth_only(root):
    client_only = custom_ca_cert(
        root, extended_key_usage=[ExtendedKeyUsageOID.CLIENT_AUTH]
    )
    assert "extendedKeyUsage of clientAuth without serverAuth" in invalid(
        bundle_files(client_only, root)
    )


@pytest.mark.parametrize(
    "usages",
    [
        [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
        [ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE],
    ],
    ids=["server-and-client", "any"],
)
def test_intermediate_with_accepted_eku(root, usages):
    accepted = custom_ca_cert(root, extended_key_usage=usages)
    bundle = ca.validate_bundle(bundle_files(accepted, root), NOW)
    assert ca.same_certificate(bundle.intermediate.cert, accepted.cert)


def test_chain_ends_with_other_root(root, other_root, intermediate):
    files = bundle_files(intermediate, root, roots=[other_root.cert])
    assert invalid(files) == (
        "Certificate 2 in cert-chain.pem is the root 'CN=Root CA,O=Istio' ({0}), which is "
        "not in root-cert.pem. The bundle mixes certificates from different "
        "roots.".format(ca.fingerprint(root.cert))
    )


def test_intermediate_from_other_root(root, other_root, intermediate):
    files = bundle_files(
        intermediate,
        root,
        roots=[other_root.cert],
        chain=[intermediate.cert, other_root.cert],
    )
    assert invalid(files) == (
        "Certificate 2 in cert-chain.pem is the root 'CN=Root CA,O=Istio' ({0}), but that "
        "root did not sign '{1}'. cert-chain.pem must end with the root that signed the "
        "certificate before it.".format(
            ca.fingerprint(other_root.cert), INTERMEDIATE_SUBJECT
        )
    )


def test_short_chain_from_other_root(root, other_root, intermediate):
    files = bundle_files(
        intermediate, root, roots=[other_root.cert], chain=[intermediate.cert]
    )
    assert invalid(files) == (
        "No root in root-cert.pem signed '{0}' (issuer 'CN=Root CA,O=Istio'). "
        "root-cert.pem contains {1}, so the bundle mixes certificates from different "
        "roots.".format(INTERMEDIATE_SUBJECT, ca.fingerprint(other_root.cert))
    )


@pytest.mark.parametrize("missing", ca.DATA_KEYS)
def test_missing_data_key(root, intermediate, missing):
    files = bundle_files(intermediate, root)
    del files[missing]
    present = ", ".join(sorted(files))
    assert invalid(files) == (
        "The data key '{0}' is missing (data keys present: {1}). istiod reports an "
        "incomplete signing CA bundle and cannot use it as a plug-in CA.".format(
            missing, present
        )
    )


def test_all_data_keys_missing():
    assert invalid({}) == (
        "The data key 'ca-cert.pem', 'ca-key.pem', 'root-cert.pem', 'cert-chain.pem' is "
        "missing (data keys present: none). istiod reports an incomplete signing CA "
        "bundle and cannot use it as a plug-in CA."
    )


def test_empty_data_key(root, intermediate):
    files = bundle_files(intermediate, root)
    files[ca.CERT_CHAIN] = b""
    assert invalid(files) == "The data key 'cert-chain.pem' is empty."


def test_certificate_without_pem_block(root, intermediate):
    files = bundle_files(intermediate, root)
    files[ca.CA_CERT] = b"not a certificate\n"
    assert invalid(files) == "ca-cert.pem contains no PEM certificate block."


def test_certificate_with_corrupt_body(root, intermediate):
    files = bundle_files(intermediate, root)
    files[ca.ROOT_CERT] = (
        b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    )
    assert invalid(files) == (
        "Certificate 1 in root-cert.pem is not a valid X.509 certificate."
    )


def test_key_not_pem(root, intermediate):
    files = bundle_files(
        intermediate, root, key_pem=b"-----BEGIN PRIVATE KEY-----\nx\n"
    )
    assert invalid(files) == "ca-key.pem is not an unencrypted PEM private key."


def test_encrypted_key(root, intermediate):
    encrypted = intermediate.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"passphrase"),
    )
    files = bundle_files(intermediate, root, key_pem=encrypted)
    assert invalid(files) == "ca-key.pem is not an unencrypted PEM private key."


def test_ed25519_key(root, intermediate):
    key = ed25519.Ed25519PrivateKey.generate()
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    files = bundle_files(intermediate, root, key_pem=key_pem)
    assert invalid(files) == (
        "ca-key.pem is a Ed25519PrivateKey key, but istiod signs only with RSA or ECDSA "
        "keys."
    )


def test_two_certificates_in_ca_cert(root, intermediate):
    files = bundle_files(intermediate, root)
    files[ca.CA_CERT] = pem(intermediate.cert) + pem(root.cert)
    assert invalid(files) == (
        "ca-cert.pem contains 2 certificates, but it must contain exactly one."
    )


def test_chain_not_starting_with_intermediate(root, intermediate):
    files = bundle_files(intermediate, root, chain=[root.cert, intermediate.cert])
    assert invalid(files) == (
        "cert-chain.pem does not start with the certificate in ca-cert.pem. istiod "
        "expects the intermediate first, then any further intermediates, then the root."
    )


def test_root_not_self_signed(root, intermediate):
    files = bundle_files(intermediate, root, roots=[root.cert, intermediate.cert])
    assert invalid(files) == (
        "Certificate 2 in root-cert.pem (subject '{0}', issuer 'CN=Root CA,O=Istio') is "
        "not self-signed, so it cannot be a root.".format(INTERMEDIATE_SUBJECT)
    )


def test_root_not_ca(intermediate):
    root_subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Not a CA")])
    leaf_root = custom_ca_cert(
        None,
        subject=root_subject,
        basic_constraints=x509.BasicConstraints(ca=False, path_length=None),
    )
    leaf_intermediate = custom_ca_cert(leaf_root)
    files = bundle_files(leaf_intermediate, leaf_root)
    assert invalid(files) == (
        "Certificate 1 in root-cert.pem (subject 'CN=Not a CA') is not a CA because its "
        "basicConstraints extension is missing or has CA:FALSE."
    )


def test_further_intermediate_chain_validates(root):
    middle = custom_ca_cert(
        root,
        subject=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Middle CA")]),
        basic_constraints=x509.BasicConstraints(ca=True, path_length=1),
    )
    lowest = custom_ca_cert(middle)
    files = bundle_files(lowest, root, chain=[lowest.cert, middle.cert, root.cert])
    bundle = ca.validate_bundle(files, NOW)
    assert ca.same_certificate(bundle.issuing_root, root.cert)
    assert bundle.signed_by_root is False


def test_chain_out_of_order(root, other_root):
    middle = custom_ca_cert(
        root,
        subject=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Middle CA")]),
        basic_constraints=x509.BasicConstraints(ca=True, path_length=1),
    )
    stranger = custom_ca_cert(
        other_root,
        subject=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Stranger CA")]),
    )
    lowest = custom_ca_cert(middle)
    files = bundle_files(lowest, root, chain=[lowest.cert, stranger.cert, root.cert])
    assert invalid(files) == (
        "Certificate 2 in cert-chain.pem (subject 'CN=Stranger CA') did not sign the "
        "certificate before it, '{0}'. cert-chain.pem must list each certificate followed "
        "by its issuer.".format(INTERMEDIATE_SUBJECT)
    )


def test_supplied_root_must_be_self_signed(root, intermediate):
    with pytest.raises(ca.CAError) as caught:
        ca.load_authority(
            pem(intermediate.cert), intermediate.key_pem, "root_cert", NOW
        )
    assert str(caught.value) == (
        "The certificate of root_cert (subject '{0}', issuer 'CN=Root CA,O=Istio') is not "
        "self-signed, so it cannot be a root. Give root_cert a self-signed CA certificate "
        "that is valid now, with the private key that belongs to it.".format(INTERMEDIATE_SUBJECT)
    )


def test_supplied_root_key_must_match(root, other_root):
    with pytest.raises(ca.CAError) as caught:
        ca.load_authority(pem(root.cert), other_root.key_pem, "root_cert", NOW)
    assert str(caught.value) == (
        "The private key of root_cert does not match its certificate: their public keys "
        "differ. Give root_cert a self-signed CA certificate that is valid now, with the "
        "private key that belongs to it."
    )


# ---------------------------------------------------------------------------
# Requests


@pytest.mark.parametrize(
    "text, seconds",
    [("30d", 2592000), ("12h", 43200), ("1w2d", 777600), ("90m", 5400), ("45s", 45)],
)
def test_parse_duration(text, seconds):
    assert ca.parse_duration(text, "renew_before") == seconds


@pytest.mark.parametrize("text", ["", "30", "d30", "1y", "0d", "3 d"])
def test_parse_duration_rejects(text):
    with pytest.raises(ca.CAError, match="renew_before"):
        ca.parse_duration(text, "renew_before")


def test_request_renew_before_must_be_shorter():
    with pytest.raises(ca.CAError) as caught:
        ca.Request("c1", intermediate_lifetime="20d", renew_before="30d")
    assert str(caught.value) == (
        "renew_before '30d' must be shorter than intermediate_lifetime '20d', or every "
        "run would renew the intermediate."
    )


def test_request_rejects_rotation_with_regenerate_always():
    with pytest.raises(ca.CAError, match="rotate_root cannot be combined"):
        ca.Request("c1", rotate_root=True, regenerate="always")


def test_request_rejects_long_cluster_name():
    with pytest.raises(ca.CAError) as caught:
        ca.Request("x" * 129)
    assert "has 129 characters, but X.509 allows at most 128" in str(caught.value)


def test_request_rejects_empty_cluster_name():
    with pytest.raises(ca.CAError, match="cluster_name is empty"):
        ca.Request(" ")


# ---------------------------------------------------------------------------
# Decisions


def decide(files, request, root_source=None, new_root_source=None, phase=None, now=NOW):
    return ca.decide(
        files,
        phase,
        request,
        root_source or absent("root"),
        new_root_source or absent("new root"),
        now,
        SOURCE,
    )


def test_create_generates_root_and_bundle():
    source = generatable()
    plan = decide(None, ecdsa_request(), source)
    assert plan.operation == ca.Plan.CREATE
    assert plan.phase == 1
    assert plan.generated == [source]
    bundle = ca.validate_bundle(plan.after.files(), NOW)
    assert ca.same_certificate(bundle.issuing_root, source.generated.cert)


def test_create_with_supplied_root(root):
    plan = decide(None, ecdsa_request(), loaded(root))
    assert plan.generated == []
    assert ca.same_certificate(plan.after.issuing_root, root.cert)


def test_create_without_root_fails():
    with pytest.raises(ca.CAError) as caught:
        decide(None, ecdsa_request())
    assert str(caught.value) == (
        "This run needs the root CA, but none was given. Set root_cert_path and "
        "root_key_path to have the module generate one and keep its key in those files, "
        "or set root_cert and root_key to a root of your own."
    )


def test_create_uses_requested_organization_and_key_type():
    source = generatable()
    plan = decide(
        None, ca.Request("c1", organization="Example", key_type="ecdsa_p256"), source
    )
    subject = plan.after.intermediate.cert.subject
    assert (
        subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "Example"
    )
    assert ca.describe_key(plan.after.intermediate.key) == "ecdsa_p256"
    assert ca.describe_key(source.generated.key) == "ecdsa_p256"


def test_valid_bundle_is_kept(root, intermediate):
    plan = decide(bundle_files(intermediate, root), ecdsa_request(), loaded(root))
    assert plan.operation == ca.Plan.KEEP
    assert plan.changes is False
    assert plan.phase == 1
    assert ca.next_step(plan, SOURCE) == "Nothing is needed."


def test_valid_bundle_kept_without_root(root, intermediate):
    plan = decide(bundle_files(intermediate, root), ecdsa_request())
    assert plan.operation == ca.Plan.KEEP
    assert plan.warnings == []


def test_missing_root_files_warn_on_keep(root, intermediate):
    plan = decide(bundle_files(intermediate, root), ecdsa_request(), generatable())
    assert plan.operation == ca.Plan.KEEP
    assert plan.generated == []
    assert len(plan.warnings) == 1
    assert (
        "do not exist, so this module cannot renew the intermediate" in plan.warnings[0]
    )


def test_intermediate_within_window_is_renewed(root):
    aging = new_intermediate(root, lifetime_days=40, now=NOW - 20 * DAY)
    files = bundle_files(aging, root)
    plan = decide(files, ecdsa_request(renew_before="30d"), loaded(root))
    assert plan.operation == ca.Plan.RENEW
    assert plan.reason == (
        "the intermediate expires at 2026-12-24T12:00:00Z, within renew_before 30d"
    )
    renewed = plan.after.files()
    assert renewed[ca.ROOT_CERT] == files[ca.ROOT_CERT]
    assert renewed[ca.CA_KEY] != files[ca.CA_KEY]
    bundle = ca.validate_bundle(renewed, NOW)
    assert bundle.intermediate.cert.serial_number != aging.cert.serial_number
    assert ca.same_certificate(bundle.issuing_root, root.cert)
    assert ca.not_after(bundle.intermediate.cert) == NOW + 365 * DAY


def test_intermediate_outside_window_is_kept(root):
    young = new_intermediate(root, lifetime_days=40, now=NOW - 5 * DAY)
    plan = decide(
        bundle_files(young, root), ecdsa_request(renew_before="30d"), loaded(root)
    )
    assert plan.operation == ca.Plan.KEEP


def test_renewal_keeps_key_type_and_organization(root):
    aging = ca.issue_intermediate(
        root, "ecdsa_p256", "Example", "c1", "istio-system", 40 * 86400, NOW - 20 * DAY
    )
    plan = decide(bundle_files(aging, root), ca.Request("c1"), loaded(root))
    assert plan.operation == ca.Plan.RENEW
    renewed = plan.after.intermediate
    assert ca.describe_key(renewed.key) == "ecdsa_p256"
    organization = renewed.cert.subject.get_attributes_for_oid(
        NameOID.ORGANIZATION_NAME
    )
    assert organization[0].value == "Example"


def test_renewal_without_root_key_fails(root):
    aging = new_intermediate(root, lifetime_days=40, now=NOW - 20 * DAY)
    with pytest.raises(ca.CAError) as caught:
        decide(bundle_files(aging, root), ecdsa_request())
    assert str(caught.value) == (
        "A new intermediate is needed (the intermediate expires at 2026-12-24T12:00:00Z, "
        "within renew_before 30d), but the key of the root that signed the current one "
        "('CN=Root CA,O=Istio', {0}) was not given. Set root_cert_path and root_key_path, "
        "or root_cert and root_key, to that root. During a root rotation the new root "
        "options may supply it instead.".format(ca.fingerprint(root.cert))
    )


def test_renewal_stops_at_root_expiry():
    ending_root = new_root(lifetime_days=20)
    clamped = new_intermediate(ending_root, lifetime_days=365)
    plan = decide(
        bundle_files(clamped, ending_root), ecdsa_request(), loaded(ending_root)
    )
    assert plan.operation == ca.Plan.KEEP
    assert len(plan.warnings) == 1
    assert plan.warnings[0].startswith("The root 'CN=Root CA,O=Istio' (")
    assert "Rotate the root with rotate_root before then." in plan.warnings[0]


def test_renewal_refused_with_crl(root):
    aging = new_intermediate(root, lifetime_days=40, now=NOW - 20 * DAY)
    files = bundle_files(aging, root)
    files[ca.CA_CRL] = b"-----BEGIN X509 CRL-----\n"
    with pytest.raises(ca.CAError, match="has a ca-crl.pem data key"):
        decide(files, ecdsa_request(), loaded(root))


def test_replacement_refused_with_crl(root, other_root, intermediate):
    files = bundle_files(intermediate, root, roots=[other_root.cert])
    files[ca.CA_CRL] = b"-----BEGIN X509 CRL-----\n"
    request = ecdsa_request(regenerate="full_idempotence")
    with pytest.raises(ca.CAError) as caught:
        decide(files, request, loaded(root))
    assert str(caught.value) == (
        "{0} has a ca-crl.pem data key. istiod requires a CRL signed by every CA in "
        "cert-chain.pem, and this module does not issue CRLs, so a new intermediate "
        "would make istiod reject the bundle. Remove ca-crl.pem or replace the "
        "intermediate yourself.".format(SOURCE)
    )


def test_renewal_refused_below_further_intermediate(root):
    middle = custom_ca_cert(
        root,
        subject=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Middle CA")]),
        basic_constraints=x509.BasicConstraints(ca=True, path_length=1),
    )
    lowest = custom_ca_cert(middle, not_after_at=NOW + 2 * DAY)
    files = bundle_files(lowest, root, chain=[lowest.cert, middle.cert, root.cert])
    with pytest.raises(ca.CAError, match="signed by a further intermediate"):
        decide(files, ecdsa_request(), loaded(root))


def test_cluster_name_mismatch_fails(root, intermediate):
    with pytest.raises(ca.CAError) as caught:
        decide(bundle_files(intermediate, root), ca.Request("c2"), loaded(root))
    assert str(caught.value) == (
        "The intermediate in {0} has L='c1' but cluster_name is 'c2'. Nothing was "
        "changed. Set the options to match it, or set regenerate to full_idempotence to "
        "issue a new intermediate from the same root.".format(SOURCE)
    )


def test_key_type_mismatch_kept_with_never(root, intermediate):
    request = ca.Request("c1", key_type="rsa_4096", regenerate="never")
    plan = decide(bundle_files(intermediate, root), request, loaded(root))
    assert plan.operation == ca.Plan.KEEP


def test_mismatch_replaced_with_full_idempotence(root, intermediate):
    files = bundle_files(intermediate, root)
    request = ca.Request("c2", key_type="ecdsa_p256", regenerate="full_idempotence")
    plan = decide(files, request, loaded(root))
    assert plan.operation == ca.Plan.REPLACE
    assert plan.reason == "has L='c1' but cluster_name is 'c2'"
    after = plan.after.files()
    assert after[ca.ROOT_CERT] == files[ca.ROOT_CERT]
    locality = plan.after.intermediate.cert.subject.get_attributes_for_oid(
        NameOID.LOCALITY_NAME
    )
    assert locality[0].value == "c2"
    assert plan.root_changed is False


def test_regenerate_always_replaces_every_run(root, intermediate):
    files = bundle_files(intermediate, root)
    request = ecdsa_request(regenerate="always")
    first = decide(files, request, loaded(root))
    second = decide(first.after.files(), request, loaded(root))
    assert first.operation == ca.Plan.REPLACE
    assert second.operation == ca.Plan.REPLACE
    serials = {
        intermediate.cert.serial_number,
        first.after.intermediate.cert.serial_number,
        second.after.intermediate.cert.serial_number,
    }
    assert len(serials) == 3


def test_invalid_bundle_fails_and_names_defect(root, intermediate, other_root):
    files = bundle_files(intermediate, root, key_pem=other_root.key_pem)
    with pytest.raises(ca.CAError) as caught:
        decide(files, ecdsa_request(), loaded(root))
    assert str(caught.value) == (
        "{0} is invalid. ca-key.pem does not match the certificate in ca-cert.pem: their "
        "public keys differ. Nothing was changed. Fix the Secret, or set regenerate to "
        "full_idempotence to replace the bundle with a new intermediate and the root from "
        "the root options.".format(SOURCE)
    )


def test_invalid_bundle_replaced_under_same_root(root):
    expired = custom_ca_cert(
        root, not_before_at=NOW - 400 * DAY, not_after_at=NOW - DAY
    )
    files = bundle_files(expired, root)
    plan = decide(files, ecdsa_request(regenerate="full_idempotence"), loaded(root))
    assert plan.operation == ca.Plan.REPLACE
    assert plan.root_changed is False
    assert plan.warnings == []
    assert plan.before_problem.startswith("ca-cert.pem (subject")
    ca.validate_bundle(plan.after.files(), NOW)


def test_invalid_bundle_replaced_with_new_root(root, other_root, intermediate):
    files = bundle_files(intermediate, root, roots=[other_root.cert])
    plan = decide(files, ecdsa_request(regenerate="full_idempotence"), generatable())
    assert plan.operation == ca.Plan.REPLACE
    assert plan.root_changed is True
    assert plan.warnings[0].startswith("The trust bundle changed in one step.")
    assert len(plan.generated) == 1
    assert ca.next_step(plan, SOURCE).startswith("Restart istiod, then every workload")


def test_root_drift_fails(root, other_root, intermediate):
    with pytest.raises(ca.CAError) as caught:
        decide(bundle_files(intermediate, root), ecdsa_request(), loaded(other_root))
    assert str(caught.value) == (
        "The root from root_cert and key ({0}) is not in root-cert.pem of {1}, which "
        "contains {2}. After a completed root rotation, point the root options at the new "
        "root. Nothing was changed. To move the bundle to another root without breaking "
        "mutual TLS, use rotate_root. To replace the whole bundle at once, set regenerate "
        "to full_idempotence, then restart istiod and every workload.".format(
            ca.fingerprint(other_root.cert), SOURCE, ca.fingerprint(root.cert)
        )
    )


def test_root_drift_kept_with_never(root, other_root, intermediate):
    request = ecdsa_request(regenerate="never")
    plan = decide(bundle_files(intermediate, root), request, loaded(other_root))
    assert plan.operation == ca.Plan.KEEP
    assert plan.warnings[-1].endswith(
        "The bundle was kept because regenerate is never."
    )


def test_root_drift_replaced_with_full_idempotence(root, other_root, intermediate):
    request = ecdsa_request(regenerate="full_idempotence")
    plan = decide(bundle_files(intermediate, root), request, loaded(other_root))
    assert plan.operation == ca.Plan.REPLACE
    assert plan.root_changed is True
    assert ca.same_certificate(plan.after.issuing_root, other_root.cert)
    assert len(plan.after.roots) == 1


# ---------------------------------------------------------------------------
# Root rotation


def rotate(files, phase, root_source, new_root_source, request=None):
    plan = decide(
        files,
        request or ecdsa_request(rotate_root=True),
        root_source,
        new_root_source,
        phase=phase,
    )
    return plan, plan.after.files()


def test_rotation_runs_through_four_phases(root, intermediate):
    old_files = bundle_files(intermediate, root)
    new_source = generatable("new root")

    to_two, files_two = rotate(old_files, 1, loaded(root), new_source)
    assert to_two.operation == ca.Plan.ROTATE_ROOT
    assert to_two.phase == 2
    assert to_two.generated == [new_source]
    new_cert = new_source.generated.cert
    assert files_two[ca.ROOT_CERT] == pem(root.cert) + pem(new_cert)
    assert files_two[ca.CA_CERT] == old_files[ca.CA_CERT]
    assert files_two[ca.CA_KEY] == old_files[ca.CA_KEY]
    assert files_two[ca.CERT_CHAIN] == old_files[ca.CERT_CHAIN]
    assert ca.validate_bundle(files_two, NOW).issuing_root == root.cert
    new_source.mark_persisted()

    to_three, files_three = rotate(files_two, 2, loaded(root), new_source)
    assert to_three.phase == 3
    assert files_three[ca.ROOT_CERT] == files_two[ca.ROOT_CERT]
    assert files_three[ca.CA_KEY] != files_two[ca.CA_KEY]
    bundle_three = ca.validate_bundle(files_three, NOW)
    assert ca.same_certificate(bundle_three.issuing_root, new_cert)
    assert files_three[ca.CERT_CHAIN] == pem(bundle_three.intermediate.cert) + pem(
        new_cert
    )

    to_four, files_four = rotate(files_three, 3, loaded(root), new_source)
    assert to_four.phase == 4
    assert files_four[ca.ROOT_CERT] == pem(new_cert)
    assert files_four[ca.CA_CERT] == files_three[ca.CA_CERT]
    assert files_four[ca.CERT_CHAIN] == files_three[ca.CERT_CHAIN]
    ca.validate_bundle(files_four, NOW)

    settled = rotate(files_four, 4, loaded(root), new_source)[0]
    assert settled.operation == ca.Plan.KEEP
    assert settled.phase == 4
    assert settled.reason == "the root rotation is complete"


def test_rotation_next_steps(root, intermediate):
    new_source = loaded(new_root(), "new root")
    plan, files = rotate(bundle_files(intermediate, root), 1, loaded(root), new_source)
    assert "Wait until every proxy trusts both roots" in ca.next_step(plan, SOURCE)
    plan, files = rotate(files, 2, loaded(root), new_source)
    assert "comes from the new intermediate" in ca.next_step(plan, SOURCE)
    plan, files = rotate(files, 3, loaded(root), new_source)
    assert ca.next_step(plan, SOURCE).startswith("The root rotation is complete.")


def test_phase_four_settles_after_root_options_move(root, intermediate):
    new_authority = new_root()
    files = bundle_files(new_intermediate(new_authority), new_authority)
    plan = decide(files, ecdsa_request(), loaded(new_authority), phase=4)
    assert plan.operation == ca.Plan.KEEP
    assert plan.phase == 4
    assert ca.next_step(plan, SOURCE) == "Nothing is needed."


def test_old_root_option_allowed_after_rotation(root):
    new_authority = new_root()
    files = bundle_files(new_intermediate(new_authority), new_authority)
    plan = decide(
        files, ecdsa_request(), loaded(root), loaded(new_authority, "new root"), phase=4
    )
    assert plan.operation == ca.Plan.KEEP
    assert ca.next_step(plan, SOURCE).startswith("The root rotation is complete.")


def test_rotation_without_new_root_fails(root, intermediate):
    with pytest.raises(ca.CAError) as caught:
        rotate(bundle_files(intermediate, root), 1, loaded(root), absent())
    assert str(caught.value).startswith("rotate_root needs the new root.")


def test_rotation_to_same_root_fails(root, intermediate):
    with pytest.raises(ca.CAError) as caught:
        rotate(
            bundle_files(intermediate, root), 1, loaded(root), loaded(root, "new root")
        )
    assert str(caught.value) == (
        "The new root ({0}) is the root that {1} already uses, so there is nothing to "
        "rotate to. Supply a different new root, or set rotate_root to false.".format(
            ca.fingerprint(root.cert), SOURCE
        )
    )


def test_phase_three_needs_new_root_key(root, intermediate):
    new_source = loaded(new_root(), "new root")
    files_two = rotate(bundle_files(intermediate, root), 1, loaded(root), new_source)[1]
    with pytest.raises(ca.CAError) as caught:
        rotate(files_two, 2, loaded(root), generatable("new root"))
    assert str(caught.value).startswith(
        "Phase 3 of the root rotation issues the intermediate from the new root"
    )


def test_phase_three_rejects_other_new_root(root, intermediate):
    phase, files_two = rotate(
        bundle_files(intermediate, root),
        1,
        loaded(root),
        loaded(new_root(), "new root"),
    )
    stranger = new_root()
    with pytest.raises(ca.CAError) as caught:
        rotate(files_two, 2, loaded(root), loaded(stranger, "new root"))
    assert str(caught.value).startswith(
        "The new root ({0}) is not in root-cert.pem of {1}".format(
            ca.fingerprint(stranger.cert), SOURCE
        )
    )


def test_renewal_comes_before_rotation(root):
    aging = new_intermediate(root, lifetime_days=40, now=NOW - 20 * DAY)
    plan, files = rotate(
        bundle_files(aging, root), 1, loaded(root), loaded(new_root(), "new root")
    )
    assert plan.operation == ca.Plan.RENEW
    assert plan.phase == 1
    assert len(ca.validate_bundle(files, NOW).roots) == 1


def test_rotation_note_on_create():
    plan = decide(None, ecdsa_request(rotate_root=True), generatable())
    assert plan.operation == ca.Plan.CREATE
    assert plan.warnings[0].startswith(
        "rotate_root has no effect on the run that creates"
    )


def test_detect_phase_from_content(root, intermediate):
    new_authority = new_root()
    two_roots = bundle_files(intermediate, root, roots=[root.cert, new_authority.cert])
    bundle = ca.validate_bundle(two_roots, NOW)
    assert ca.detect_phase(bundle, None, absent()) == 2
    assert ca.detect_phase(bundle, 3, absent()) == 2
    single = ca.validate_bundle(bundle_files(intermediate, root), NOW)
    assert ca.detect_phase(single, None, absent()) == 1
    assert ca.detect_phase(single, 4, absent()) == 4


# ---------------------------------------------------------------------------
# Root files and the Secret body (real files in a temporary directory)


def test_root_files_written_with_modes(tmp_path):
    files = RootFiles(str(tmp_path / "root-cert.pem"), str(tmp_path / "root-key.pem"))
    authority = new_root()
    files.write(authority)
    key_mode = stat.S_IMODE(os.stat(files.key_path).st_mode)
    cert_mode = stat.S_IMODE(os.stat(files.cert_path).st_mode)
    assert key_mode == 0o600
    assert cert_mode == 0o644
    assert sorted(os.listdir(str(tmp_path))) == ["root-cert.pem", "root-key.pem"]
    reloaded = files.load("root", NOW)
    assert ca.same_certificate(reloaded.cert, authority.cert)
    assert reloaded.key_pem == authority.key_pem
    assert files.key_mode_warning() is None


def test_root_files_never_overwritten(tmp_path):
    files = RootFiles(str(tmp_path / "root-cert.pem"), str(tmp_path / "root-key.pem"))
    first = new_root()
    files.write(first)
    with pytest.raises(
        SecretError, match="appeared while this run generated a new root"
    ):
        files.write(new_root())
    assert files.load("root", NOW).key_pem == first.key_pem


def test_root_files_half_present(tmp_path):
    files = RootFiles(str(tmp_path / "root-cert.pem"), str(tmp_path / "root-key.pem"))
    (tmp_path / "root-key.pem").write_bytes(new_root().key_pem)
    with pytest.raises(SecretError) as caught:
        files.load("root", NOW)
    assert str(caught.value) == (
        "{0} exists but {1} does not. Restore the missing file of the root, or move both "
        "files away to have a new root generated.".format(
            files.key_path, files.cert_path
        )
    )


def test_root_files_absent_loads_none(tmp_path):
    files = RootFiles(str(tmp_path / "root-cert.pem"), str(tmp_path / "root-key.pem"))
    assert files.load("root", NOW) is None


def test_root_files_missing_directory(tmp_path):
    files = RootFiles(
        str(tmp_path / "no" / "cert.pem"), str(tmp_path / "no" / "key.pem")
    )
    with pytest.raises(SecretError, match="does not exist. Create it first."):
        files.write(new_root())


def test_readable_key_file_warns(tmp_path):
    files = RootFiles(str(tmp_path / "root-cert.pem"), str(tmp_path / "root-key.pem"))
    files.write(new_root())
    os.chmod(files.key_path, 0o644)
    assert files.key_mode_warning() == (
        "The root key file {0} has mode 0644, so other users can read it. Run 'chmod 600 "
        "{0}'.".format(files.key_path)
    )


def test_root_source_generates_when_files_absent(tmp_path):
    source, files = root_source(
        "root", None, None, str(tmp_path / "c.pem"), str(tmp_path / "k.pem"), NOW
    )
    assert source.authority is None
    assert source.can_generate is True
    assert files.cert_path == str(tmp_path / "c.pem")


def test_root_source_rejects_bad_content(root):
    with pytest.raises(SecretError) as caught:
        root_source("root", pem(root.cert).decode(), "not a key", None, None, NOW)
    assert str(caught.value) == (
        "The private key of root_cert and root_key is not an unencrypted PEM private key. "
        "Give root_cert and root_key a self-signed CA certificate that is valid now, with the "
        "private key that belongs to it."
    )


def test_build_secret_keeps_other_fields(root, intermediate):
    plan = decide(
        bundle_files(intermediate, root),
        ecdsa_request(rotate_root=True),
        loaded(root),
        loaded(new_root(), "new root"),
    )
    existing = {
        "metadata": {
            "name": "cacerts",
            "namespace": "istio-system",
            "resourceVersion": "42",
            "uid": "u",
            "annotations": {"note": "kept"},
        },
        "type": "Opaque",
        "data": {"ca-crl.pem": "Y3Js"},
    }
    body = build_secret("cacerts", "istio-system", plan, existing=existing)
    assert body["metadata"]["resourceVersion"] == "42"
    assert "uid" not in body["metadata"]
    assert body["metadata"]["annotations"]["note"] == "kept"
    assert body["metadata"]["annotations"][PHASE_ANNOTATION] == "2"
    assert body["metadata"]["labels"]["app.kubernetes.io/managed-by"] == (
        "kubecrypt.pod_encryption"
    )
    assert body["data"]["ca-crl.pem"] == "Y3Js"
    decoded = read_bundle_files(body)
    assert decoded[ca.ROOT_CERT] == plan.after.file(ca.ROOT_CERT)
    assert recorded_phase(body) == 2


def test_read_bundle_files_rejects_bad_base64():
    secret = {
        "metadata": {"name": "cacerts", "namespace": "x"},
        "data": {"ca-key.pem": "a"},
    }
    with pytest.raises(SecretError, match="is not valid base64"):
        read_bundle_files(secret)


def test_base64_roundtrip_of_written_data(root, intermediate):
    plan = decide(None, ecdsa_request(), loaded(root))
    body = build_secret("cacerts", "istio-system", plan)
    for data_key in ca.DATA_KEYS:
        assert base64.b64decode(body["data"][data_key]) == plan.after.file(data_key)
