"""The istio_cacerts module against a real API server.

Each test runs the module through ansible in its own namespace. The Secret each step
leaves behind is checked here with cryptography directly, not with the module's own
validation, so a bug in that validation cannot hide a broken bundle.
"""

import base64
import datetime
import json
import os
import re
import stat
import uuid

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from harness import run_module, run_playbook

MODULE = "kubecrypt.pod_encryption.istio_cacerts"
PHASE_ANNOTATION = "pod-encryption.kubecrypt.io/root-rotation-phase"
PRIVATE_KEY_BLOCK = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")
DATA_KEYS = ("ca-cert.pem", "ca-key.pem", "root-cert.pem", "cert-chain.pem")


@pytest.fixture
def namespace(kubectl):
    name = "cacerts-" + uuid.uuid4().hex[:8]
    kubectl("create", "namespace", name)
    yield name
    kubectl("delete", "namespace", name, "--wait=true", "--timeout=120s")


@pytest.fixture
def root_paths(tmp_path):
    return {
        "root_cert_path": str(tmp_path / "root-cert.pem"),
        "root_key_path": str(tmp_path / "root-key.pem"),
    }


@pytest.fixture
def new_root_paths(tmp_path):
    return {
        "new_root_cert_path": str(tmp_path / "new-root-cert.pem"),
        "new_root_key_path": str(tmp_path / "new-root-key.pem"),
    }


def get_secret(kubectl, namespace):
    found = kubectl(
        "get", "secret", "cacerts", "-n", namespace, "-o", "json", check=False
    )
    return found if isinstance(found, dict) else None


def read_files(kubectl, namespace):
    secret = get_secret(kubectl, namespace)
    return {key: base64.b64decode(value) for key, value in secret["data"].items()}


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc)


def public_der(public_key):
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def check_bundle(files):
    """Check a bundle as istiod would, with cryptography only.

    Return the intermediate certificate and the list of roots.
    """
    assert sorted(key for key in files if key in DATA_KEYS) == sorted(DATA_KEYS)
    intermediate = x509.load_pem_x509_certificate(files["ca-cert.pem"])
    key = serialization.load_pem_private_key(files["ca-key.pem"], password=None)
    chain = x509.load_pem_x509_certificates(files["cert-chain.pem"])
    roots = x509.load_pem_x509_certificates(files["root-cert.pem"])

    assert public_der(key.public_key()) == public_der(intermediate.public_key())
    assert chain[0] == intermediate
    assert len(chain) == 2
    assert chain[1] in roots
    intermediate.verify_directly_issued_by(chain[1])
    constraints = intermediate.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical is True
    assert constraints.value.ca is True
    assert constraints.value.path_length == 0
    usage = intermediate.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign is True
    with pytest.raises(x509.ExtensionNotFound):
        intermediate.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    now = utc_now()
    for cert in [intermediate] + roots:
        assert cert.not_valid_before_utc <= now < cert.not_valid_after_utc
    for root in roots:
        root.verify_directly_issued_by(root)
        assert root.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    return intermediate, roots


def fingerprint(cert):
    digest = cert.fingerprint(hashes.SHA256()).hex().upper()
    return "SHA256:" + ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def phase_of(kubectl, namespace):
    secret = get_secret(kubectl, namespace)
    return secret["metadata"]["annotations"][PHASE_ANNOTATION]


def arguments(namespace, *extra, **options):
    values = {"namespace": namespace, "cluster_name": "cluster1"}
    for mapping in extra:
        values.update(mapping)
    values.update(options)
    return values


def test_four_steps_create(kubeconfig, kubectl, namespace, root_paths):
    args = arguments(namespace, root_paths)

    checked = run_module(MODULE, args, kubeconfig, check=True, diff=True)[0]
    assert checked["changed"] is True
    assert checked["operation"] == "create"
    assert checked["generated_root"]["written"] is False
    assert checked["diff"]["before"] == {"exists": False}
    assert get_secret(kubectl, namespace) is None
    assert not os.path.exists(root_paths["root_key_path"])
    assert not os.path.exists(root_paths["root_cert_path"])

    applied = run_module(MODULE, args, kubeconfig)[0]
    assert applied["changed"] is True
    assert applied["operation"] == "create"
    assert applied["phase"] == 1
    assert applied["generated_root"]["written"] is True
    files = read_files(kubectl, namespace)
    intermediate, roots = check_bundle(files)
    assert intermediate.public_key().key_size == 4096
    locality = intermediate.subject.get_attributes_for_oid(NameOID.LOCALITY_NAME)
    assert locality[0].value == "cluster1"
    assert applied["intermediate"]["fingerprint"] == fingerprint(intermediate)
    assert applied["intermediate"]["serial"] == format(intermediate.serial_number, "x")
    assert applied["root"]["fingerprint"] == fingerprint(roots[0])
    assert applied["intermediate"]["days_to_expiry"] in (364, 365)
    assert (
        get_secret(kubectl, namespace)["metadata"]["annotations"][PHASE_ANNOTATION]
        == "1"
    )

    with open(root_paths["root_cert_path"], "rb") as handle:
        assert handle.read() == files["root-cert.pem"]
    key_mode = stat.S_IMODE(os.stat(root_paths["root_key_path"]).st_mode)
    assert key_mode == 0o600
    with open(root_paths["root_key_path"], "rb") as handle:
        root_key = handle.read()
    assert PRIVATE_KEY_BLOCK.search(root_key.decode())
    for content in files.values():
        assert root_key.strip() not in content
    version = get_secret(kubectl, namespace)["metadata"]["resourceVersion"]

    checked_again = run_module(MODULE, args, kubeconfig, check=True, diff=True)[0]
    assert checked_again["changed"] is False
    assert checked_again["operation"] == "keep"
    assert checked_again["diff"]["before"] == checked_again["diff"]["after"]
    assert "generated_root" not in checked_again

    applied_again = run_module(MODULE, args, kubeconfig)[0]
    assert applied_again["changed"] is False
    assert applied_again["operation"] == "keep"
    assert get_secret(kubectl, namespace)["metadata"]["resourceVersion"] == version
    assert read_files(kubectl, namespace) == files


def test_renewal_keeps_root(kubeconfig, kubectl, namespace, root_paths):
    short = arguments(
        namespace,
        root_paths,
        key_type="ecdsa_p256",
        intermediate_lifetime="1h",
        renew_before="10m",
    )
    created = run_module(MODULE, short, kubeconfig)[0]
    assert created["operation"] == "create"
    before = read_files(kubectl, namespace)
    old_intermediate = check_bundle(before)[0]

    longer = dict(short, intermediate_lifetime="2h", renew_before="90m")
    checked = run_module(MODULE, longer, kubeconfig, check=True, diff=True)[0]
    assert checked["changed"] is True
    assert checked["operation"] == "renew"
    assert read_files(kubectl, namespace) == before

    renewed = run_module(MODULE, longer, kubeconfig)[0]
    assert renewed["changed"] is True
    assert renewed["operation"] == "renew"
    assert renewed["reason"].startswith("the intermediate expires at ")
    after = read_files(kubectl, namespace)
    new_intermediate, roots = check_bundle(after)
    assert after["root-cert.pem"] == before["root-cert.pem"]
    assert after["ca-key.pem"] != before["ca-key.pem"]
    assert new_intermediate.serial_number != old_intermediate.serial_number
    assert new_intermediate.issuer == old_intermediate.issuer
    lifetime = new_intermediate.not_valid_after_utc - utc_now()
    assert datetime.timedelta(minutes=110) < lifetime <= datetime.timedelta(hours=2)

    again = run_module(MODULE, longer, kubeconfig)[0]
    assert again["changed"] is False
    assert again["operation"] == "keep"


def test_root_rotation_four_runs(
    kubeconfig, kubectl, namespace, root_paths, new_root_paths
):
    base = arguments(namespace, root_paths, key_type="ecdsa_p256")
    run_module(MODULE, base, kubeconfig)
    phase_one = read_files(kubectl, namespace)
    old_intermediate, (old_root,) = check_bundle(phase_one)
    rotation = dict(base, rotate_root=True, **new_root_paths)

    checked = run_module(MODULE, rotation, kubeconfig, check=True, diff=True)[0]
    assert checked["changed"] is True
    assert checked["phase"] == 2
    assert checked["diff"]["after"]["phase"] == 2
    assert len(checked["diff"]["after"]["trust_bundle"]) == 2
    assert read_files(kubectl, namespace) == phase_one
    assert not os.path.exists(new_root_paths["new_root_key_path"])

    to_two = run_module(MODULE, rotation, kubeconfig)[0]
    assert to_two["operation"] == "rotate_root"
    assert to_two["phase"] == 2
    assert to_two["generated_root"]["kind"] == "new root"
    assert "Wait until every proxy trusts both roots" in to_two["next_step"]
    assert (
        to_two["rotation_istiod_values"]["pilot"]["env"]["ISTIO_MULTIROOT_MESH"]
        == "true"
    )
    phase_two = read_files(kubectl, namespace)
    intermediate, roots = check_bundle(phase_two)
    assert roots[0] == old_root
    assert len(roots) == 2
    new_root = roots[1]
    assert intermediate == old_intermediate
    assert phase_two["ca-key.pem"] == phase_one["ca-key.pem"]
    assert phase_of(kubectl, namespace) == "2"
    with open(new_root_paths["new_root_cert_path"], "rb") as handle:
        assert x509.load_pem_x509_certificate(handle.read()) == new_root

    to_three = run_module(MODULE, rotation, kubeconfig)[0]
    assert to_three["phase"] == 3
    phase_three = read_files(kubectl, namespace)
    intermediate, roots = check_bundle(phase_three)
    assert roots == [old_root, new_root]
    intermediate.verify_directly_issued_by(new_root)
    assert intermediate != old_intermediate
    assert phase_three["ca-key.pem"] != phase_two["ca-key.pem"]
    assert to_three["root"]["fingerprint"] == fingerprint(new_root)
    assert phase_of(kubectl, namespace) == "3"

    to_four = run_module(MODULE, rotation, kubeconfig)[0]
    assert to_four["phase"] == 4
    phase_four = read_files(kubectl, namespace)
    final_intermediate, roots = check_bundle(phase_four)
    assert roots == [new_root]
    assert final_intermediate == intermediate
    assert phase_of(kubectl, namespace) == "4"
    assert to_four["next_step"].startswith("The root rotation is complete.")
    version = get_secret(kubectl, namespace)["metadata"]["resourceVersion"]

    settled = run_module(MODULE, rotation, kubeconfig)[0]
    assert settled["changed"] is False
    assert settled["phase"] == 4
    assert get_secret(kubectl, namespace)["metadata"]["resourceVersion"] == version

    moved = arguments(
        namespace,
        key_type="ecdsa_p256",
        root_cert_path=new_root_paths["new_root_cert_path"],
        root_key_path=new_root_paths["new_root_key_path"],
    )
    after_rotation = run_module(MODULE, moved, kubeconfig)[0]
    assert after_rotation["changed"] is False
    assert after_rotation["next_step"] == "Nothing is needed."


def private_key_strings(*pems):
    """Return each key PEM, its base64 and the base64 lines of its body."""
    strings = set()
    for key_pem in pems:
        strings.add(base64.b64encode(key_pem).decode())
        for line in key_pem.decode().splitlines():
            if line and not line.startswith("-----"):
                strings.add(line)
    return strings


def assert_no_private_key(output, *pems):
    assert not PRIVATE_KEY_BLOCK.search(output)
    for secret in private_key_strings(*pems):
        assert secret not in output


def test_verbose_output_never_shows_private_keys(
    kubeconfig, kubectl, namespace, root_paths, new_root_paths
):
    base = arguments(namespace, root_paths, key_type="ecdsa_p256")
    created, process = run_module(MODULE, base, kubeconfig, diff=True, verbosity=3)
    assert created["changed"] is True
    with open(root_paths["root_key_path"], "rb") as handle:
        root_key = handle.read()
    first_key = read_files(kubectl, namespace)["ca-key.pem"]
    assert_no_private_key(process.stdout + process.stderr, root_key, first_key)
    assert "content" not in created

    rotation = dict(base, rotate_root=True, **new_root_paths)
    pems = [root_key, first_key]
    for expected_phase in (2, 3, 4):
        result, process = run_module(
            MODULE, rotation, kubeconfig, diff=True, verbosity=3
        )
        assert result["phase"] == expected_phase
        pems.append(read_files(kubectl, namespace)["ca-key.pem"])
        if os.path.exists(new_root_paths["new_root_key_path"]):
            with open(new_root_paths["new_root_key_path"], "rb") as handle:
                pems.append(handle.read())
        assert_no_private_key(process.stdout + process.stderr, *pems)


PLAYBOOK = """
- hosts: localhost
  connection: local
  gather_facts: false
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
  tasks:
    - name: Manage the cacerts Secret
      kubecrypt.pod_encryption.istio_cacerts: "{{ cacerts_args }}"
"""


def test_playbook_output_never_shows_private_keys(
    kubeconfig, kubectl, namespace, root_paths, new_root_paths, tmp_path
):
    playbook = tmp_path / "cacerts.yml"
    playbook.write_text(PLAYBOOK)
    base = arguments(namespace, root_paths, key_type="ecdsa_p256")
    rotation = dict(base, rotate_root=True, **new_root_paths)
    pems = []
    for step, args in enumerate([base, rotation, rotation, rotation], start=1):
        run = run_playbook(
            str(playbook),
            kubeconfig,
            extra_vars={"cacerts_args": args},
            verbosity=3,
            diff=True,
            var_files=(),
        )
        assert run.failed == 0, run.stdout[-3000:]
        assert run.changed == 1
        assert phase_of(kubectl, namespace) == str(step)
        pems.append(read_files(kubectl, namespace)["ca-key.pem"])
        for path in (root_paths["root_key_path"], new_root_paths["new_root_key_path"]):
            if os.path.exists(path):
                with open(path, "rb") as handle:
                    pems.append(handle.read())
        # The result is printed, so masking did not swallow the metadata.
        intermediate = x509.load_pem_x509_certificate(
            read_files(kubectl, namespace)["ca-cert.pem"]
        )
        assert fingerprint(intermediate) in run.stdout
        assert_no_private_key(run.stdout + run.stderr, *pems)


def test_supplied_root_key_stays_out_of_output(
    kubeconfig, kubectl, namespace, tmp_path
):
    key = ec.generate_private_key(ec.SECP256R1())
    root_pem, key_pem = self_signed_root(key)
    args = arguments(
        namespace,
        key_type="ecdsa_p256",
        root_cert=root_pem.decode(),
        root_key=key_pem.decode(),
    )
    result, process = run_module(MODULE, args, kubeconfig, diff=True, verbosity=3)
    assert result["changed"] is True
    assert result["root"]["fingerprint"] == fingerprint(
        x509.load_pem_x509_certificate(root_pem)
    )
    files = read_files(kubectl, namespace)
    check_bundle(files)
    assert files["root-cert.pem"] == root_pem
    assert_no_private_key(process.stdout + process.stderr, key_pem, files["ca-key.pem"])
    assert os.listdir(str(tmp_path)) == []


def self_signed_root(key, not_after=None):
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example"),
            x509.NameAttribute(NameOID.COMMON_NAME, "Example Root"),
        ]
    )
    now = utc_now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(not_after or now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def expired_bundle():
    """Build a bundle whose intermediate expired yesterday, signed by a valid root."""
    root_key = ec.generate_private_key(ec.SECP256R1())
    root_pem = self_signed_root(root_key)[0]
    root = x509.load_pem_x509_certificate(root_pem)

    key = ec.generate_private_key(ec.SECP256R1())
    now = utc_now()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Expired CA")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(root.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=30))
        .not_valid_after(now - datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(root_key, hashes.SHA256())
    )

    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    files = {
        "ca-cert.pem": cert_pem,
        "ca-key.pem": key_pem,
        "cert-chain.pem": cert_pem + root_pem,
        "root-cert.pem": root_pem,
    }
    return files, cert


def create_secret(kubectl, namespace, files):
    manifest = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "cacerts", "namespace": namespace},
        "data": {key: base64.b64encode(value).decode() for key, value in files.items()},
    }
    kubectl("create", "-f", "-", stdin=json.dumps(manifest))


def test_invalid_secret_fails_and_changes_nothing(
    kubeconfig, kubectl, namespace, root_paths
):
    files, cert = expired_bundle()
    create_secret(kubectl, namespace, files)
    version = get_secret(kubectl, namespace)["metadata"]["resourceVersion"]
    expired_at = cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")

    result, process = run_module(MODULE, arguments(namespace, root_paths), kubeconfig)
    assert result.get("failed") is True
    assert result["msg"] == (
        "Secret {0}/cacerts is invalid. ca-cert.pem (subject 'CN=Expired CA') expired at "
        "{1}. istiod rejects an expired chain with 'cert chain has expired'. Nothing was "
        "changed. Fix the Secret, or set regenerate to full_idempotence to replace the "
        "bundle with a new intermediate and the root from the root options.".format(
            namespace, expired_at
        )
    )
    assert get_secret(kubectl, namespace)["metadata"]["resourceVersion"] == version
    assert not os.path.exists(root_paths["root_key_path"])
    assert_no_private_key(process.stdout + process.stderr, files["ca-key.pem"])


def test_invalid_secret_replaced_on_request(kubeconfig, kubectl, namespace, root_paths):
    files = expired_bundle()[0]
    files["unrelated.txt"] = b"not managed"
    create_secret(kubectl, namespace, files)
    args = arguments(
        namespace, root_paths, key_type="ecdsa_p256", regenerate="full_idempotence"
    )

    result = run_module(MODULE, args, kubeconfig, diff=True)[0]
    assert result["changed"] is True
    assert result["operation"] == "replace"
    assert result["diff"]["before"]["valid"] is False
    assert "expired at" in result["diff"]["before"]["problem"]
    assert any("The trust bundle changed in one step." in w for w in result["warnings"])
    after = read_files(kubectl, namespace)
    check_bundle(after)
    assert after["unrelated.txt"] == b"not managed"
    assert after["root-cert.pem"] != files["root-cert.pem"]

    again = run_module(MODULE, args, kubeconfig)[0]
    assert again["changed"] is False


def test_other_root_fails_without_change(
    kubeconfig, kubectl, namespace, root_paths, tmp_path
):
    run_module(
        MODULE, arguments(namespace, root_paths, key_type="ecdsa_p256"), kubeconfig
    )
    before = get_secret(kubectl, namespace)
    stranger_paths = {
        "root_cert_path": str(tmp_path / "stranger-cert.pem"),
        "root_key_path": str(tmp_path / "stranger-key.pem"),
    }
    key = ec.generate_private_key(ec.SECP256R1())
    root_pem, key_pem = self_signed_root(key)
    with open(stranger_paths["root_cert_path"], "wb") as handle:
        handle.write(root_pem)
    with open(stranger_paths["root_key_path"], "wb") as handle:
        handle.write(key_pem)
    os.chmod(stranger_paths["root_key_path"], 0o644)

    result = run_module(MODULE, arguments(namespace, stranger_paths), kubeconfig)[0]
    assert result.get("failed") is True
    assert (
        "is not in root-cert.pem of Secret {0}/cacerts".format(namespace)
        in result["msg"]
    )
    assert "Nothing was changed." in result["msg"]
    after = get_secret(kubectl, namespace)
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


def test_readable_root_key_file_warns(kubeconfig, kubectl, namespace, root_paths):
    args = arguments(namespace, root_paths, key_type="ecdsa_p256")
    run_module(MODULE, args, kubeconfig)
    os.chmod(root_paths["root_key_path"], 0o640)
    result = run_module(MODULE, args, kubeconfig)[0]
    assert result["changed"] is False
    assert any(
        "has mode 0640, so other users can read it" in w for w in result["warnings"]
    )


def test_return_content_returns_bundle(kubeconfig, kubectl, namespace, root_paths):
    args = arguments(namespace, root_paths, key_type="ecdsa_p256", return_content=True)
    result = run_module(MODULE, args, kubeconfig)[0]
    files = read_files(kubectl, namespace)
    assert sorted(result["content"]) == sorted(DATA_KEYS)
    for key in DATA_KEYS:
        assert result["content"][key] == files[key].decode()


def test_bad_option_names_value(kubeconfig, kubectl, namespace, root_paths):
    args = arguments(
        namespace, root_paths, intermediate_lifetime="20d", renew_before="30d"
    )
    result = run_module(MODULE, args, kubeconfig)[0]
    assert result.get("failed") is True
    assert result["msg"] == (
        "renew_before '30d' must be shorter than intermediate_lifetime '20d', or every "
        "run would renew the intermediate."
    )
    assert get_secret(kubectl, namespace) is None
    assert not os.path.exists(root_paths["root_key_path"])


def test_missing_root_fails_cleanly(kubeconfig, kubectl, namespace):
    result = run_module(MODULE, arguments(namespace), kubeconfig)[0]
    assert result.get("failed") is True
    assert result["msg"].startswith("This run needs the root CA, but none was given.")
    assert get_secret(kubectl, namespace) is None
