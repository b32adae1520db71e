"""Mutual TLS handshakes with workload certificates from the module's intermediate.

sign_workload_certificate() signs a leaf the way istiod does: an ECDSA P-256 key, the
SPIFFE identity as the only subject alternative name, serverAuth and clientAuth, a short
lifetime. Two sockets on 127.0.0.1 then run a real TLS handshake with Python's ssl
module (OpenSSL): the server requires a client certificate, both sides verify against
root-cert.pem, and each presents its leaf followed by the intermediate. Every socket
operation has a timeout and the server thread is joined with a timeout, so a broken
handshake fails the test instead of hanging it.
"""

import datetime
import socket
import ssl
import threading

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from ansible_collections.kubecrypt.pod_encryption.plugins.module_utils import (
    _istio_ca as ca,
)

TIMEOUT_SECONDS = 10
TRUST_DOMAIN = "cluster.local"


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc)


def spiffe_id(namespace, service_account):
    return "spiffe://{0}/ns/{1}/sa/{2}".format(TRUST_DOMAIN, namespace, service_account)


def sign_workload_certificate(
    intermediate, namespace, service_account, lifetime_hours=1
):
    """Issue a workload certificate from ``intermediate`` as istiod would.

    Return the certificate and its private key.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    now = utc_now()
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(intermediate.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=lifetime_hours))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(
                intermediate.cert.public_key()
            ),
            critical=False,
        )
        # istiod leaves the subject empty, so the identity is a critical SAN.
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.UniformResourceIdentifier(spiffe_id(namespace, service_account))]
            ),
            critical=True,
        )
    )
    return builder.sign(intermediate.key, hashes.SHA256()), key


class Workload:
    """A workload's key, certificate chain and trust bundle, written to PEM files."""

    def __init__(self, directory, name, intermediate, trust_bundle_pem):
        self.identity = spiffe_id("default", name)
        cert, key = sign_workload_certificate(intermediate, "default", name)
        self.cert = cert
        self.chain_path = str(directory / (name + "-chain.pem"))
        self.key_path = str(directory / (name + "-key.pem"))
        self.trust_path = str(directory / (name + "-root-cert.pem"))
        with open(self.chain_path, "wb") as handle:
            handle.write(cert.public_bytes(serialization.Encoding.PEM))
            handle.write(intermediate.cert_pem)
        with open(self.key_path, "wb") as handle:
            handle.write(
                key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            )
        with open(self.trust_path, "wb") as handle:
            handle.write(trust_bundle_pem)

    def context(self, purpose):
        """Build an SSLContext that presents this workload and verifies the peer."""
        protocol = (
            ssl.PROTOCOL_TLS_SERVER if purpose == "server" else ssl.PROTOCOL_TLS_CLIENT
        )
        context = ssl.SSLContext(protocol)
        # Istio checks the peer's SPIFFE URI, not a host name. The tests compare it
        # below.
        context.check_hostname = False
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cafile=self.trust_path)
        context.load_cert_chain(self.chain_path, self.key_path)
        return context


def peer_identity(peer_cert):
    return [
        value for kind, value in peer_cert.get("subjectAltName", ()) if kind == "URI"
    ]


class HandshakeOutcome:
    """The errors and peer identities that the server and the client saw.

    An error stays None when that side succeeded.
    """

    def __init__(self):
        self.server_error = None
        self.client_error = None
        self.server_saw = None
        self.client_saw = None
        self.reply = None


def run_handshake(server, client):
    """Connect ``client`` to ``server`` on 127.0.0.1 and exchange one message.

    Return a HandshakeOutcome with what each side saw.
    """
    outcome = HandshakeOutcome()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.settimeout(TIMEOUT_SECONDS)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    server_context = server.context("server")
    client_context = client.context("client")

    def serve():
        try:
            connection = listener.accept()[0]
            connection.settimeout(TIMEOUT_SECONDS)
            with server_context.wrap_socket(connection, server_side=True) as tls:
                outcome.server_saw = peer_identity(tls.getpeercert())
                message = tls.recv(64)
                tls.sendall(b"echo " + message)
        except (ssl.SSLError, OSError) as exc:
            outcome.server_error = exc

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with socket.create_connection(("127.0.0.1", port), TIMEOUT_SECONDS) as raw:
            with client_context.wrap_socket(raw) as tls:
                outcome.client_saw = peer_identity(tls.getpeercert())
                tls.sendall(b"ping")
                outcome.reply = tls.recv(64)
    except (ssl.SSLError, OSError) as exc:
        outcome.client_error = exc
    finally:
        thread.join(TIMEOUT_SECONDS)
        listener.close()
    assert not thread.is_alive(), "the server thread did not finish in time"
    return outcome


class Mesh:
    """A bundle that decide() created, and the root Authority that signed it."""

    def __init__(self, bundle, root):
        self.bundle = bundle
        self.root = root
        self.intermediate = bundle.intermediate
        self.trust_bundle = bundle.file(ca.ROOT_CERT)


def build_pki(key_type="ecdsa_p256"):
    """Create a root and an intermediate with the module's own functions."""
    request = ca.Request("c1", key_type=key_type)
    source = ca.RootSource("root", "root_cert_path", can_generate=True)
    plan = ca.decide(
        None, None, request, source, ca.RootSource("new root", None), utc_now(), "test"
    )
    return Mesh(plan.after, source.generated)


@pytest.fixture(scope="module")
def mesh():
    return build_pki()


@pytest.fixture(scope="module")
def other_mesh():
    return build_pki()


def test_workload_certificate_has_spiffe_identity(mesh):
    cert, key = sign_workload_certificate(mesh.intermediate, "shop", "cart")
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert names.critical is True
    uris = names.value.get_values_for_type(x509.UniformResourceIdentifier)
    assert uris == ["spiffe://cluster.local/ns/shop/sa/cart"]
    usages = list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    assert usages == [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    assert key.curve.name == "secp256r1"
    lifetime = ca.not_after(cert) - ca.not_before(cert)
    assert lifetime <= datetime.timedelta(hours=1, minutes=1)
    cert.verify_directly_issued_by(mesh.intermediate.cert)
    mesh.intermediate.cert.verify_directly_issued_by(mesh.root.cert)


def test_workload_chain_verifies_as_client_certificate(mesh):
    verification = pytest.importorskip("cryptography.x509.verification")
    if not hasattr(verification, "ClientVerifier"):
        pytest.skip("cryptography before 43.0 has no client certificate verifier")
    cert = sign_workload_certificate(mesh.intermediate, "shop", "cart")[0]
    verifier = (
        verification.PolicyBuilder()
        .store(verification.Store([mesh.root.cert]))
        .build_client_verifier()
    )
    verified = verifier.verify(cert, [mesh.intermediate.cert])
    uris = [
        name.value
        for name in verified.subjects
        if isinstance(name, x509.UniformResourceIdentifier)
    ]
    assert uris == ["spiffe://cluster.local/ns/shop/sa/cart"]


def test_mutual_tls_succeeds(tmp_path, mesh):
    trust = mesh.trust_bundle
    server = Workload(tmp_path, "server", mesh.intermediate, trust)
    client = Workload(tmp_path, "client", mesh.intermediate, trust)
    outcome = run_handshake(server, client)
    assert outcome.server_error is None
    assert outcome.client_error is None
    assert outcome.server_saw == [spiffe_id("default", "client")]
    assert outcome.client_saw == [spiffe_id("default", "server")]
    assert outcome.reply == b"echo ping"


def test_mutual_tls_succeeds_with_rsa_4096(tmp_path):
    rsa_mesh = build_pki("rsa_4096")
    trust = rsa_mesh.trust_bundle
    server = Workload(tmp_path, "server", rsa_mesh.intermediate, trust)
    client = Workload(tmp_path, "client", rsa_mesh.intermediate, trust)
    outcome = run_handshake(server, client)
    assert outcome.server_error is None
    assert outcome.client_error is None
    assert outcome.reply == b"echo ping"


def assert_unknown_issuer(error):
    assert isinstance(error, ssl.SSLCertVerificationError)
    assert error.reason == "CERTIFICATE_VERIFY_FAILED"
    # X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY
    assert error.verify_code == 20


def test_server_rejects_client_from_other_root(tmp_path, mesh, other_mesh):
    server = Workload(tmp_path, "server", mesh.intermediate, mesh.trust_bundle)
    stranger = Workload(
        tmp_path, "stranger", other_mesh.intermediate, mesh.trust_bundle
    )
    outcome = run_handshake(server, stranger)
    assert_unknown_issuer(outcome.server_error)
    assert outcome.server_saw is None
    assert outcome.reply is None
    assert isinstance(outcome.client_error, (ssl.SSLError, OSError))


def test_client_rejects_server_from_other_root(tmp_path, mesh, other_mesh):
    impostor = Workload(
        tmp_path, "impostor", other_mesh.intermediate, mesh.trust_bundle
    )
    client = Workload(tmp_path, "client", mesh.intermediate, mesh.trust_bundle)
    outcome = run_handshake(impostor, client)
    assert_unknown_issuer(outcome.client_error)
    assert outcome.client_saw is None
    assert outcome.server_saw is None


def test_server_auth_only_intermediate_breaks_client_auth(tmp_path, mesh):
    """Show why validation rejects a serverAuth-only intermediate."""
    server_only = defective_intermediate(
        mesh, x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH])
    )
    trust = mesh.trust_bundle
    server = Workload(tmp_path, "server", mesh.intermediate, trust)
    client = Workload(tmp_path, "client", server_only, trust)
    outcome = run_handshake(server, client)
    assert isinstance(outcome.server_error, ssl.SSLCertVerificationError)
    # X509_V_ERR_INVALID_PURPOSE
    assert outcome.server_error.verify_code == 26
    assert outcome.server_saw is None


def test_intermediate_without_key_cert_sign_breaks_mtls(tmp_path, mesh):
    """Show why validation requires keyCertSign in the intermediate."""
    no_signing = defective_intermediate(
        mesh,
        x509.KeyUsage(
            digital_signature=True,
            content_commitment=False,
            key_encipherment=False,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=False,
            crl_sign=True,
            encipher_only=False,
            decipher_only=False,
        ),
    )
    trust = mesh.trust_bundle
    server = Workload(tmp_path, "server", mesh.intermediate, trust)
    client = Workload(tmp_path, "client", no_signing, trust)
    outcome = run_handshake(server, client)
    assert isinstance(outcome.server_error, ssl.SSLCertVerificationError)
    # OpenSSL 3.0 reports X509_V_ERR_INVALID_CA here. X509_V_ERR_KEYUSAGE_NO_CERTSIGN
    # names the same defect, so either code proves the rejection.
    assert outcome.server_error.verify_code in (32, 79)
    assert outcome.server_saw is None


def defective_intermediate(mesh, replacement):
    """Issue an intermediate like the module's with one extension replaced or added."""
    template = mesh.intermediate.cert
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(template.subject)
        .issuer_name(template.issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(ca.not_before(template))
        .not_valid_after(ca.not_after(template))
    )
    for extension in template.extensions:
        if isinstance(extension.value, (x509.SubjectKeyIdentifier, type(replacement))):
            continue
        builder = builder.add_extension(extension.value, critical=extension.critical)
    builder = builder.add_extension(
        x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
    )
    builder = builder.add_extension(
        replacement, critical=isinstance(replacement, x509.KeyUsage)
    )
    return ca.Authority(builder.sign(mesh.root.key, hashes.SHA256()), key)


def test_rotation_keeps_old_and_new_workloads_talking(tmp_path):
    """Run the four rotation phases and handshake across them like a live mesh would.

    A workload that renewed in phase 2 still has a certificate from the old intermediate
    but trusts both roots. A workload that renewed in phase 3 has a certificate from the
    new intermediate. They must accept each other in both directions. A proxy that never
    got the phase 2 trust bundle must reject the new intermediate. That is why phase 2
    comes first and why next_step advises waiting before phase 3.
    """
    now = utc_now()
    request = ca.Request("c1", key_type="ecdsa_p256", rotate_root=True)
    old_root = ca.RootSource("root", "root_cert_path", can_generate=True)
    new_root = ca.RootSource("new root", "new_root_cert_path", can_generate=True)
    created = ca.decide(None, None, request, old_root, new_root, now, "test")
    old_root.mark_persisted()
    phase_one = created.after

    to_two = ca.decide(phase_one.files(), 1, request, old_root, new_root, now, "test")
    new_root.mark_persisted()
    to_three = ca.decide(
        to_two.after.files(), 2, request, old_root, new_root, now, "test"
    )
    to_four = ca.decide(
        to_three.after.files(), 3, request, old_root, new_root, now, "test"
    )
    assert [to_two.phase, to_three.phase, to_four.phase] == [2, 3, 4]

    both_roots = to_two.after.file(ca.ROOT_CERT)
    old_workload = Workload(tmp_path, "old", phase_one.intermediate, both_roots)
    new_workload = Workload(tmp_path, "new", to_three.after.intermediate, both_roots)
    for server, client in ((old_workload, new_workload), (new_workload, old_workload)):
        outcome = run_handshake(server, client)
        assert outcome.server_error is None
        assert outcome.client_error is None
        assert outcome.reply == b"echo ping"

    stale = Workload(
        tmp_path, "stale", phase_one.intermediate, phase_one.file(ca.ROOT_CERT)
    )
    outcome = run_handshake(stale, new_workload)
    assert_unknown_issuer(outcome.server_error)

    final = Workload(
        tmp_path, "final", to_four.after.intermediate, to_four.after.file(ca.ROOT_CERT)
    )
    outcome = run_handshake(final, new_workload)
    assert outcome.server_error is None
    assert outcome.reply == b"echo ping"
