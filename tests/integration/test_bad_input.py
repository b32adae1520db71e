"""Bad input to the modules and the roles: one clear error, no cluster change, no leaked key.

Every row runs on a control plane of this file's own, on which the fixture has installed the
stand-in Istio charts, so the snapshots also cover an existing PeerAuthentication. A row's setup
(for example a malformed IPsec Secret) runs before the first snapshot and its cleanup after the
second, so the two snapshots show only what the failing run changed. Module rows run at -vvv,
and no output may contain the key material of any row.
"""

import base64
import dataclasses
import datetime
import json
import os
import re
import subprocess
import time
import typing

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from harness import bin_dir, kubectl_runner, run_module, run_playbook

MODULE = "kubecrypt.pod_encryption.cilium_ipsec_key"
HELM = os.path.join(bin_dir(), "helm")
CILIUM = "playbooks/cilium.yml"
ISTIO = "playbooks/istio.yml"
SITE = "playbooks/site.yml"
ALGORITHM = "rfc4106(gcm(aes))"
# Key material of the Secrets that the rows create. No output may contain it.
MATERIAL = "5f1c0e9a7b3d2c4e6a8f0b1d3e5c7a9f2b4d6e80"
SECRET_NAME = "cilium-ipsec-keys"
SECRET_NAMESPACE = "ipsec-bad-input"
SNAPSHOT_KINDS = "namespaces,secrets,configmaps,daemonsets,deployments"
PEER_AUTHENTICATION_CRD = "peerauthentications.security.istio.io"
# The Istio install that the fixture converges: a mesh-wide STRICT policy and a namespace-wide
# PERMISSIVE one in default, which the Istio rows would change if they got past validation.
ISTIO_BASELINE = {"istio_mtls_namespaces": [{"name": "default", "mode": "PERMISSIVE"}]}

# ansible-core 2.19 (the ansible 12.x package) starts these messages with its own text.
ARGUMENT_ERROR = "Validation of arguments failed:\n"
FILTER_ERROR = (
    "Task failed: Finalization of task args for 'ansible.builtin.set_fact' failed: Error while "
    "resolving value for 'cilium_encryption__values': The filter plugin "
    "'kubecrypt.pod_encryption.cilium_values' failed: "
)
# "fatal: [localhost]: FAILED! => {...}" for a task, "failed: [localhost] (item=...) => {...}"
# for one item of a loop.
FAILURE_LINE = re.compile(
    r"^(?:fatal: \[[^\]]+\]: FAILED!|failed: \[[^\]]+\] \(item=.*?\)) => (?P<result>\{.*\})$"
)
UNREACHABLE = (
    "Failed to connect to the Kubernetes API: the Kubernetes API server cannot be reached "
    "(MaxRetryError). Check that it is running and that kubeconfig, host or K8S_AUTH_HOST "
    "point at it."
)


def invalid_key(problem, namespace=SECRET_NAMESPACE):
    """Return the module's message for an existing key line that fails to parse."""
    return (
        "The key in Secret {0}/{1} is invalid: {2} Nothing was changed. Fix the Secret, or set "
        "regenerate to full_idempotence to replace it with a new key (every Cilium agent then "
        "needs a restart).".format(namespace, SECRET_NAME, problem)
    )


def missing_data_key(present, namespace=SECRET_NAMESPACE):
    return invalid_key(
        "Secret {0}/{1} has no data key 'keys' (data keys present: {2}). Set data_key to the "
        "key Cilium reads (encryption.ipsec.keyFile), or set regenerate to full_idempotence to "
        "write a new key.".format(namespace, SECRET_NAME, present),
        namespace,
    )


def line(spi="3+", algorithm=ALGORITHM, material=MATERIAL, icv="128"):
    return " ".join((spi, algorithm, material, icv))


@dataclasses.dataclass
class BadInput:
    """One bad input: how to run it, its setup and the exact error message expected."""

    name: str
    expected: str
    module_args: typing.Optional[dict] = None
    playbook: typing.Optional[str] = None
    extra_vars: dict = dataclasses.field(default_factory=dict)
    # Data of the Secret that setup creates, mapping data key to text. An empty dict creates a
    # Secret without data, and None creates no Secret.
    secret_data: typing.Optional[dict] = None
    secret_namespace: str = SECRET_NAMESPACE
    unreachable: bool = False
    module: str = MODULE
    secret_name: str = SECRET_NAME
    # Roll the istiod Helm release back afterwards if the row upgraded it.
    restore_istiod: bool = False
    xfail: typing.Optional[str] = None


def key_line_row(name, text, problem):
    """A row that stores ``text`` in the IPsec Secret and runs the module on it."""
    return BadInput(
        name=name,
        expected=invalid_key(problem),
        module_args={"namespace": SECRET_NAMESPACE},
        secret_data={"keys": text},
    )


def module_row(name, arguments, expected, **fields):
    return BadInput(name=name, expected=expected, module_args=arguments, **fields)


def role_row(name, playbook, extra_vars, expected, **fields):
    return BadInput(
        name=name, expected=expected, playbook=playbook, extra_vars=extra_vars, **fields
    )


KEY_LINE_ROWS = [
    key_line_row(
        "spi-0",
        line(spi="0+"),
        "SPI 0 is out of range: Cilium accepts key IDs from 1 to 15.",
    ),
    key_line_row(
        "spi-16",
        line(spi="16+"),
        "SPI 16 is out of range: Cilium accepts key IDs from 1 to 15.",
    ),
    key_line_row(
        "spi-not-numeric",
        line(spi="x+"),
        "SPI 'x' is not a number: the first field is a key ID from 1 to 15 followed by '+'.",
    ),
    key_line_row(
        "spi-without-plus",
        line(spi="3"),
        "SPI 3 has no '+': global keys reuse ESP sequence numbers across nodes "
        "(CVE-2024-28860). Write '3+' to use per-tunnel keys.",
    ),
    key_line_row(
        "hex-39-chars",
        line(material=MATERIAL[:39]),
        "The key material has 39 hex characters, expected 40 (AES-128), 56 (AES-192) or 72 "
        "(AES-256): an AES key plus a 4-byte salt.",
    ),
    key_line_row(
        "hex-41-chars",
        line(material=MATERIAL + "0"),
        "The key material has 41 hex characters, expected 40 (AES-128), 56 (AES-192) or 72 "
        "(AES-256): an AES key plus a 4-byte salt.",
    ),
    key_line_row(
        "hex-73-chars",
        line(material=(MATERIAL * 2)[:73]),
        "The key material has 73 hex characters, expected 40 (AES-128), 56 (AES-192) or 72 "
        "(AES-256): an AES key plus a 4-byte salt.",
    ),
    key_line_row(
        "hex-with-non-hex-char",
        line(material=MATERIAL[:39] + "g"),
        "The key material is not hexadecimal: use only the characters 0-9 and a-f.",
    ),
    key_line_row(
        "double-space",
        line(spi="3+ "),
        "The key line contains two spaces in a row: separate the fields with exactly one space.",
    ),
    key_line_row(
        "crlf-line-ending",
        line() + "\r\n",
        "The key line contains a carriage return (CRLF line ending): Cilium splits on single "
        "spaces, so the ICV field would not parse.",
    ),
    key_line_row(
        "tab-separator",
        line().replace(" ", "\t", 1),
        "The key line contains a tab: separate the fields with single spaces.",
    ),
    key_line_row(
        "leading-space",
        " " + line(),
        "The key line starts or ends with whitespace: Cilium splits on single spaces, so the "
        "extra space makes an empty field.",
    ),
    key_line_row(
        "two-key-lines",
        line() + "\n" + line(spi="4+"),
        "The key contains more than one line: write exactly one key line.",
    ),
    key_line_row(
        "trailing-field",
        line() + " extra",
        "The key line has 5 fields, expected 4: only the AES-GCM form '<SPI>+ "
        "rfc4106(gcm(aes)) <hex> <ICV bits>' is supported.",
    ),
    key_line_row(
        "missing-icv-field",
        " ".join(("3+", ALGORITHM, MATERIAL)),
        "The key line has 3 fields, expected 4: '<SPI>+ rfc4106(gcm(aes)) <hex> <ICV bits>'.",
    ),
    key_line_row(
        "empty-key",
        "",
        "The key is empty: Cilium would start with SPI 0 and encrypt nothing.",
    ),
    key_line_row(
        "unknown-algorithm",
        line(algorithm="cbc(aes)"),
        "Algorithm 'cbc(aes)' is not supported: use rfc4106(gcm(aes)).",
    ),
    key_line_row(
        "icv-256-in-secret",
        line(icv="256"),
        "ICV length 256 is not supported: the kernel's rfc4106(gcm(aes)) accepts 96 or 128 bits "
        "(use 128).",
    ),
    key_line_row(
        "icv-not-numeric",
        line(icv="abc"),
        "ICV length 'abc' is not a number: use 128.",
    ),
    BadInput(
        name="wrong-data-key",
        expected=missing_data_key("key"),
        module_args={"namespace": SECRET_NAMESPACE},
        secret_data={"key": line()},
    ),
    BadInput(
        name="secret-without-data",
        expected=missing_data_key("none"),
        module_args={"namespace": SECRET_NAMESPACE},
        secret_data={},
    ),
]

# The option rows create no Secret, so a module that accepted the option would create one.
MODULE_OPTION_ROWS = [
    module_row(
        "icv-bits-256-option",
        {"namespace": SECRET_NAMESPACE, "icv_bits": 256},
        "value of icv_bits must be one of: 96, 128, got: 256",
    ),
    module_row(
        "max-age-not-a-duration",
        {"namespace": SECRET_NAMESPACE, "max_age": "ninety days"},
        "max_age 'ninety days' is not a duration: write a number followed by w, d, h, m or s, "
        "for example 90d or 12h.",
    ),
    module_row(
        "max-age-zero",
        {"namespace": SECRET_NAMESPACE, "max_age": "0d"},
        "max_age '0d' is zero: give a positive duration.",
    ),
    module_row(
        "key-bits-differ-from-secret",
        {"namespace": SECRET_NAMESPACE, "key_bits": 256},
        "The existing key in Secret {0}/{1} is AES-128 but key_bits is 256. A rotation cannot "
        "change the key size or ICV: set key_bits and icv_bits to match it, or set regenerate "
        "to full_idempotence to replace it, then restart every Cilium agent.".format(
            SECRET_NAMESPACE, SECRET_NAME
        ),
        secret_data={"keys": line()},
    ),
    module_row(
        "namespace-does-not-exist",
        {"namespace": "nope"},
        'Failed to create Secret nope/cilium-ipsec-keys: HTTP 404: namespaces "nope" not found',
    ),
    module_row(
        "secret-name-not-dns",
        {"namespace": SECRET_NAMESPACE, "name": "Bad_Name"},
        'Failed to create Secret {0}/Bad_Name: HTTP 422: Secret "Bad_Name" is invalid: '
        'metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain must '
        "consist of lower case alphanumeric characters, '-' or '.', and must start and end with "
        "an alphanumeric character (e.g. 'example.com', regex used for validation is "
        "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')".format(
            SECRET_NAMESPACE
        ),
    ),
    module_row(
        "namespace-empty",
        {"namespace": ""},
        "namespace '' is empty: set it to the namespace of the Cilium agents, for example "
        "kube-system.",
    ),
    module_row(
        "secret-name-empty",
        {"namespace": SECRET_NAMESPACE, "name": ""},
        "name '' is empty: set it to the Helm value encryption.ipsec.secretName, for example "
        "cilium-ipsec-keys.",
    ),
    module_row(
        "api-unreachable",
        {"namespace": SECRET_NAMESPACE},
        UNREACHABLE,
        unreachable=True,
    ),
]

CILIUM_ROLE_ROWS = [
    role_row(
        "type-wireguard-capitalised",
        CILIUM,
        {"cilium_encryption_type": "WireGuard"},
        ARGUMENT_ERROR
        + "value of cilium_encryption_type must be one of: ipsec, wireguard, got: WireGuard",
    ),
    role_row(
        "helm-values-type-typo",
        CILIUM,
        {"cilium_encryption_helm_values": {"encryption": {"type": "WireGuard"}}},
        FILTER_ERROR
        + 'encryption.type "WireGuard" in cilium_encryption_helm_values is invalid. Use ipsec '
        "or wireguard in lower case, the two types this collection supports. The chart "
        "installs Cilium without encryption for a misspelled type.",
    ),
    role_row(
        "helm-values-encryption-off",
        CILIUM,
        {"cilium_encryption_helm_values": {"encryption": {"enabled": False}}},
        FILTER_ERROR
        + "encryption.enabled false in cilium_encryption_helm_values is invalid, because this "
        "role installs Cilium with encryption on only. Remove encryption.enabled from "
        "cilium_encryption_helm_values.",
    ),
    role_row(
        "top-level-key-file-on-1-20",
        CILIUM,
        {"cilium_encryption_helm_values": {"encryption": {"keyFile": "keys"}}},
        FILTER_ERROR
        + "encryption.keyFile in cilium_encryption_helm_values was removed in Cilium 1.16, and "
        "the 1.20.0 chart fails on it. Use encryption.ipsec.keyFile instead.",
    ),
    role_row(
        "userspace-fallback-on-1-17",
        CILIUM,
        {
            "cilium_encryption_chart_version": "1.17.18",
            "cilium_encryption_helm_values": {
                "encryption": {"wireguard": {"userspaceFallback": True}}
            },
        },
        FILTER_ERROR
        + "encryption.wireguard.userspaceFallback in cilium_encryption_helm_values was removed "
        "in Cilium 1.17, so the 1.17.18 chart ignores it. Remove it, because Cilium 1.17 and "
        "later use only the WireGuard module of the kernel (Linux 5.6 or later).",
    ),
    role_row(
        "encrypted-overlay-on-1-20",
        CILIUM,
        {"cilium_encryption_helm_values": {"encryption": {"ipsec": {"encryptedOverlay": True}}}},
        FILTER_ERROR
        + "encryption.ipsec.encryptedOverlay in cilium_encryption_helm_values was removed in "
        "Cilium 1.20, so the 1.20.0 chart ignores it. Remove it, because IPsec encrypts after "
        "overlay encapsulation from Cilium 1.18 on.",
    ),
    role_row(
        "old-strict-mode-on-1-20",
        CILIUM,
        {"cilium_encryption_helm_values": {"encryption": {"strictMode": {"enabled": True}}}},
        FILTER_ERROR
        + "encryption.strictMode.enabled in cilium_encryption_helm_values was removed in Cilium "
        "1.20, so the 1.20.0 chart ignores it and strict mode would be off. Use the enabled "
        "option of cilium_encryption_strict_mode or encryption.strictMode.egress.enabled "
        "instead.",
    ),
    role_row(
        "chart-version-1-15",
        CILIUM,
        {"cilium_encryption_chart_version": "1.15.0"},
        FILTER_ERROR
        + "Cilium chart version 1.15.0 is not supported. Set cilium_encryption_chart_version to "
        "a release from 1.16 to 1.20, the versions this collection supports.",
    ),
    role_row(
        "chart-version-not-exact",
        CILIUM,
        {"cilium_encryption_chart_version": "1.20"},
        FILTER_ERROR
        + 'cilium_encryption_chart_version "1.20" is not a Cilium chart version. Set it to an '
        "exact release such as 1.20.0 or v1.20.0, because the Helm values depend on the "
        "version.",
    ),
    role_row(
        "strict-ingress-with-ipsec",
        CILIUM,
        {"cilium_encryption_strict_mode": {"ingress": True}},
        FILTER_ERROR
        + "Strict ingress encryption (encryption.strictMode.ingress.enabled) requires "
        'WireGuard, but cilium_encryption_type is "ipsec". Set ingress to false in '
        "cilium_encryption_strict_mode or use wireguard.",
    ),
    role_row(
        "strict-egress-without-cidr",
        CILIUM,
        {"cilium_encryption_strict_mode": {"enabled": True}},
        FILTER_ERROR
        + "Strict egress encryption is on but encryption.strictMode.egress.cidr is empty. Set "
        "cidr in cilium_encryption_strict_mode to the cluster's IPv4 pod CIDR, for example "
        "10.0.0.0/8.",
    ),
    role_row(
        "role-key-bits-512",
        CILIUM,
        {"cilium_encryption_ipsec_key_bits": 512},
        ARGUMENT_ERROR
        + "value of cilium_encryption_ipsec_key_bits must be one of: 128, 192, 256, got: 512",
    ),
    role_row(
        "role-malformed-secret",
        CILIUM,
        {},
        invalid_key(
            "SPI 3 has no '+': global keys reuse ESP sequence numbers across nodes "
            "(CVE-2024-28860). Write '3+' to use per-tunnel keys.",
            namespace="kube-system",
        ),
        secret_data={"keys": line(spi="3")},
        secret_namespace="kube-system",
    ),
    role_row(
        "role-key-bits-differ-from-secret",
        CILIUM,
        {"cilium_encryption_ipsec_key_bits": 256},
        "The existing key in Secret kube-system/{0} is AES-128 but key_bits is 256. A rotation "
        "cannot change the key size or ICV: set key_bits and icv_bits to match it, or set "
        "regenerate to full_idempotence to replace it, then restart every Cilium "
        "agent.".format(SECRET_NAME),
        secret_data={"keys": line()},
        secret_namespace="kube-system",
    ),
]

ISTIO_ROLE_ROWS = [
    role_row(
        "mtls-mode-lower-case",
        ISTIO,
        {"istio_mtls_mode": "strict"},
        ARGUMENT_ERROR
        + "value of istio_mtls_mode must be one of: STRICT, PERMISSIVE, DISABLE, UNSET, got: "
        "strict",
    ),
    role_row(
        "namespace-mode-typo",
        ISTIO,
        {"istio_mtls_namespaces": [{"name": "default", "mode": "Strict"}]},
        ARGUMENT_ERROR
        + "value of mode must be one of: STRICT, PERMISSIVE, DISABLE, UNSET, got: Strict found "
        "in istio_mtls_namespaces",
    ),
    role_row(
        "enrolled-namespace-missing",
        ISTIO,
        {"istio_mtls_namespaces": [{"name": "default"}, {"name": "nope"}]},
        "Namespaces listed in istio_mtls_namespaces do not exist: nope. Create them first or "
        "remove them from istio_mtls_namespaces.",
    ),
    role_row(
        "root-namespace-missing",
        ISTIO,
        dict(ISTIO_BASELINE, istio_mtls_root_namespace="nope"),
        "Namespace nope in istio_mtls_root_namespace does not exist. Create it first or set "
        "istio_mtls_root_namespace to the namespace of istiod, istio-system by default.",
        restore_istiod=True,
    ),
]

SITE_ROWS = [
    role_row("site-api-unreachable", SITE, {}, UNREACHABLE, unreachable=True),
]

# CA material for the istio_cacerts rows, made when this file is imported. Every certificate uses
# an ECDSA P-256 key, and only the defect that a row names differs from a valid bundle.
CA_MODULE = "kubecrypt.pod_encryption.istio_cacerts"
CA_NAMESPACE = "default"
NOW = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
DAY = datetime.timedelta(days=1)


def new_key():
    return ec.generate_private_key(ec.SECP256R1())


def certificate(subject, key, issuer=None, issuer_key=None, **options):
    """Return a CA certificate for ``key``, self-signed unless ``issuer`` is given.

    ``options`` may set not_before, not_after, ca (False for CA:FALSE) and server_auth_only.
    """
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    is_ca = options.get("ca", True)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.subject if issuer is not None else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(options.get("not_before", NOW - DAY))
        .not_valid_after(options.get("not_after", NOW + 365 * DAY))
        .add_extension(
            x509.BasicConstraints(ca=is_ca, path_length=0 if is_ca and issuer else None),
            critical=True,
        )
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=is_ca,
                crl_sign=is_ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )
    if options.get("server_auth_only"):
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
    return builder.sign(issuer_key if issuer_key is not None else key, hashes.SHA256())


def cert_text(cert):
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def key_text(key):
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def bundle_data(intermediate, intermediate_key, root, chain_root=None):
    """Return the cacerts data for ``intermediate``, listing ``root`` in root-cert.pem."""
    return {
        "ca-cert.pem": cert_text(intermediate),
        "ca-key.pem": key_text(intermediate_key),
        "root-cert.pem": cert_text(root),
        "cert-chain.pem": cert_text(intermediate) + cert_text(chain_root or root),
    }


ROOT_KEY = new_key()
ROOT = certificate("Test Root CA", ROOT_KEY)
OTHER_ROOT_KEY = new_key()
OTHER_ROOT = certificate("Other Root CA", OTHER_ROOT_KEY)
EXPIRED_ROOT = certificate(
    "Expired Root CA", ROOT_KEY, not_before=NOW - 30 * DAY, not_after=NOW - DAY
)
FUTURE_ROOT = certificate(
    "Future Root CA", ROOT_KEY, not_before=NOW + 10 * DAY, not_after=NOW + 400 * DAY
)
INTERMEDIATE_KEY = new_key()
NOT_CA_INTERMEDIATE = certificate(
    "Not a CA", INTERMEDIATE_KEY, issuer=ROOT, issuer_key=ROOT_KEY, ca=False
)
SERVER_AUTH_INTERMEDIATE = certificate(
    "Server Auth Only", INTERMEDIATE_KEY, issuer=ROOT, issuer_key=ROOT_KEY, server_auth_only=True
)
OTHER_ROOT_INTERMEDIATE = certificate(
    "Signed By Other Root", INTERMEDIATE_KEY, issuer=OTHER_ROOT, issuer_key=OTHER_ROOT_KEY
)
# Private key text that no output may contain: each PEM body line and each PEM in base64.
CA_KEY_TEXTS = [
    text
    for key in (ROOT_KEY, OTHER_ROOT_KEY, INTERMEDIATE_KEY)
    for pem in [key_text(key)]
    for text in pem.splitlines()[1:-1] + [base64.b64encode(pem.encode()).decode()]
]


def ca_arguments(root=ROOT, key=ROOT_KEY):
    return {
        "namespace": CA_NAMESPACE,
        "cluster_name": "cluster1",
        "root_cert": cert_text(root),
        "root_key": key_text(key),
    }


def ca_row(name, expected, arguments=None, bundle=None):
    return BadInput(
        name=name,
        expected=expected,
        module=CA_MODULE,
        module_args=arguments or ca_arguments(),
        secret_data=bundle,
        secret_name="cacerts",
        secret_namespace=CA_NAMESPACE,
    )


def utc_text(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def colon_fingerprint(cert):
    return "SHA256:" + ":".join("{0:02X}".format(byte) for byte in cert.fingerprint(hashes.SHA256()))


ROOT_ADVICE = (
    " Give root_cert and root_key a self-signed CA certificate that is valid now, with the "
    "private key that belongs to it."
)
BUNDLE_ADVICE = (
    " Nothing was changed. Fix the Secret, or set regenerate to full_idempotence to replace "
    "the bundle with a new intermediate and the root from the root options."
)

CA_ROWS = [
    ca_row(
        "ca-root-expired",
        "The certificate of root_cert and root_key (subject 'CN=Expired Root CA') expired at "
        "{0}. istiod rejects an expired chain with 'cert chain has expired'.".format(
            utc_text(EXPIRED_ROOT.not_valid_after_utc)
        )
        + ROOT_ADVICE,
        arguments=ca_arguments(EXPIRED_ROOT),
    ),
    ca_row(
        "ca-root-not-yet-valid",
        "The certificate of root_cert and root_key (subject 'CN=Future Root CA') is not valid "
        "before {0}, so istiod and the proxies reject it until then. Check the clock of the "
        "host that issued it.".format(utc_text(FUTURE_ROOT.not_valid_before_utc))
        + ROOT_ADVICE,
        arguments=ca_arguments(FUTURE_ROOT),
    ),
    ca_row(
        "ca-root-key-mismatch",
        "The private key of root_cert and root_key does not match its certificate: their "
        "public keys differ." + ROOT_ADVICE,
        arguments=ca_arguments(ROOT, OTHER_ROOT_KEY),
    ),
    ca_row(
        "ca-intermediate-not-ca",
        "Secret default/cacerts is invalid. ca-cert.pem (subject 'CN=Not a CA') is not a CA "
        "because its basicConstraints extension is missing or has CA:FALSE. istiod fails with "
        "'certificate is not authorized to sign other certificates'." + BUNDLE_ADVICE,
        bundle=bundle_data(NOT_CA_INTERMEDIATE, INTERMEDIATE_KEY, ROOT),
    ),
    ca_row(
        "ca-intermediate-server-auth-only",
        "Secret default/cacerts is invalid. ca-cert.pem (subject 'CN=Server Auth Only') has an "
        "extendedKeyUsage of serverAuth without clientAuth, so the proxies fail to connect to "
        "each other. Issue the intermediate without extendedKeyUsage, or with both serverAuth "
        "and clientAuth." + BUNDLE_ADVICE,
        bundle=bundle_data(SERVER_AUTH_INTERMEDIATE, INTERMEDIATE_KEY, ROOT),
    ),
    ca_row(
        "ca-chain-to-other-root",
        "Secret default/cacerts is invalid. Certificate 2 in cert-chain.pem is the root "
        "'CN=Other Root CA' ({0}), which is not in root-cert.pem. The bundle mixes "
        "certificates from different roots.".format(colon_fingerprint(OTHER_ROOT))
        + BUNDLE_ADVICE,
        bundle=bundle_data(OTHER_ROOT_INTERMEDIATE, INTERMEDIATE_KEY, ROOT, OTHER_ROOT),
    ),
]


ISTIO_CA_ROWS = [
    role_row(
        "istio-revision-invalid",
        ISTIO,
        {"istio_mtls_revision": "Bad_Rev"},
        "Task failed: Finalization of task args for 'ansible.builtin.set_fact' failed: Error "
        "while resolving value for 'istio_mtls__istiod_name': The filter plugin "
        "'kubecrypt.pod_encryption.mesh_istiod_name' failed: Revision 'Bad_Rev' is invalid: "
        "istiod-<revision> must be a DNS label of at most 63 characters, that is lowercase "
        "letters, digits and '-', ending in a letter or a digit. Use for example 1-30-3 or "
        "canary.",
    ),
    role_row(
        "plugin-ca-root-key-mismatch",
        ISTIO,
        dict(
            ISTIO_BASELINE,
            istio_mtls_plugin_ca=True,
            istio_mtls_plugin_ca_cluster_name="cluster1",
            istio_mtls_plugin_ca_root_cert=cert_text(ROOT),
            istio_mtls_plugin_ca_root_key=key_text(OTHER_ROOT_KEY),
        ),
        "The private key of root_cert and root_key does not match its certificate: their "
        "public keys differ." + ROOT_ADVICE,
    ),
]


ROWS = (
    KEY_LINE_ROWS
    + MODULE_OPTION_ROWS
    + CA_ROWS
    + CILIUM_ROLE_ROWS
    + ISTIO_ROLE_ROWS
    + ISTIO_CA_ROWS
    + SITE_ROWS
)


def as_param(row):
    marks = [pytest.mark.xfail(strict=True, reason=row.xfail)] if row.xfail else []
    return pytest.param(row, id=row.name, marks=marks)


def wait_until(condition, timeout, description):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    raise AssertionError("timed out after {0} s waiting for {1}".format(timeout, description))


@pytest.fixture(scope="module")
def cluster(empty_cluster):
    """Converge the stand-in Istio charts and create the namespace for the Secret rows."""
    kubectl = kubectl_runner(empty_cluster)
    kubectl("create", "namespace", SECRET_NAMESPACE)

    # The root CA ConfigMap appears shortly after the namespace, and must not appear mid-row.
    def root_ca_present():
        found = kubectl(
            "get", "configmap", "kube-root-ca.crt", "-n", SECRET_NAMESPACE, check=False
        )
        return found.returncode == 0

    wait_until(root_ca_present, 60, "kube-root-ca.crt in " + SECRET_NAMESPACE)

    installed = run_playbook(ISTIO, empty_cluster, ISTIO_BASELINE)
    assert installed.returncode == 0, installed.stdout[-3000:]
    return empty_cluster


@pytest.fixture(scope="module")
def kubectl(cluster):
    return kubectl_runner(cluster)


@pytest.fixture(scope="module")
def nowhere_kubeconfig(tmp_path_factory):
    """A kubeconfig whose server is a closed port on 127.0.0.1."""
    path = tmp_path_factory.mktemp("nowhere") / "nowhere.kubeconfig"
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:9"}}],
                "users": [{"name": "u", "user": {"token": "x"}}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "c",
            }
        )
    )
    return str(path)


def snapshot(kubectl):
    """Return (kind, namespace, name, resourceVersion) of every object the rows could change.

    PeerAuthentications are included when their CRD exists. Without the CRD the first kubectl
    call fails, and a second one lists the other kinds.
    """
    listed = kubectl(
        "get",
        SNAPSHOT_KINDS + "," + PEER_AUTHENTICATION_CRD,
        "--all-namespaces",
        "-o",
        "json",
        check=False,
    )
    if not isinstance(listed, dict):
        listed = kubectl("get", SNAPSHOT_KINDS, "--all-namespaces", "-o", "json")
    return {
        (
            item["kind"],
            item["metadata"].get("namespace"),
            item["metadata"]["name"],
            item["metadata"]["resourceVersion"],
        )
        for item in listed["items"]
    }


def istiod_revision(kubeconfig):
    """Return the revision number of the istiod Helm release."""
    status = subprocess.run(
        [HELM, "--kubeconfig", kubeconfig, "status", "istiod", "-n", "istio-system", "-o", "json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        check=True,
    )
    return json.loads(status.stdout)["version"]


def roll_back_istiod(kubeconfig, revision):
    command = [HELM, "--kubeconfig", kubeconfig]
    command += "rollback istiod {0} -n istio-system --wait".format(revision).split(" ")
    subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=True)


def create_secret(kubectl, namespace, data, name=SECRET_NAME):
    manifest = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "data": {key: base64.b64encode(text.encode()).decode() for key, text in data.items()},
    }
    kubectl("create", "-f", "-", stdin=json.dumps(manifest))


def failure_messages(stdout):
    """Return the msg of each failed task or loop item that ansible-playbook printed."""
    messages = []
    for output_line in stdout.splitlines():
        match = FAILURE_LINE.match(output_line)
        if match:
            messages.append(json.loads(match.group("result")).get("msg", ""))
    return messages


def run_row(row, kubeconfig):
    """Run the row's module or playbook and return (failed, messages, all output)."""
    if row.module_args is not None:
        # Module rows read key or CA material, so they run at -vvv to show that none leaks.
        result, process = run_module(row.module, row.module_args, kubeconfig, verbosity=3)
        messages = [result["msg"]] if "msg" in result else []
        return result.get("failed") is True, messages, process.stdout + process.stderr
    run = run_playbook(row.playbook, kubeconfig, row.extra_vars)
    return run.returncode != 0, failure_messages(run.stdout), run.stdout + run.stderr


@pytest.mark.parametrize("row", [as_param(row) for row in ROWS])
def test_bad_input_rejected(row, cluster, kubectl, nowhere_kubeconfig):
    kubeconfig = nowhere_kubeconfig if row.unreachable else cluster
    if row.secret_data is not None:
        create_secret(kubectl, row.secret_namespace, row.secret_data, row.secret_name)
    if row.restore_istiod:
        revision_before = istiod_revision(cluster)
    try:
        before = snapshot(kubectl)
        failed, messages, output = run_row(row, kubeconfig)
        after = snapshot(kubectl)
    finally:
        if row.secret_data is not None:
            kubectl("delete", "secret", row.secret_name, "-n", row.secret_namespace)
        if row.restore_istiod and istiod_revision(cluster) != revision_before:
            roll_back_istiod(cluster, revision_before)

    assert failed, output[-3000:]
    assert len(messages) == 1, output[-3000:]
    assert messages[0] == row.expected
    assert "Traceback" not in messages[0]
    assert "Traceback" not in output
    assert MATERIAL not in output
    assert "PRIVATE KEY" not in output
    for key_text in CA_KEY_TEXTS:
        assert key_text not in output
    assert after == before


def test_table_size_and_unique_names():
    assert len(ROWS) >= 30
    assert len({row.name for row in ROWS}) == len(ROWS)
