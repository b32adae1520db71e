"""Start and stop a local Kubernetes control plane on 127.0.0.1 for the tests and the demo.

The control plane is etcd, kube-apiserver, kube-controller-manager and kube-scheduler built
from pinned Go modules by build.sh, plus kwok, which registers simulated nodes and moves their
pods to Running so that DaemonSets and Deployments roll out. Nothing listens on an address
other than 127.0.0.1, and etcd and the API server speak TLS only.

    localcluster.py start     build if needed, start, wait until ready, print the kubeconfig path
    localcluster.py stop      stop the processes that start recorded, and only those
    localcluster.py status    print whether the API server answers
    localcluster.py reset     stop, delete the state directory, start again

State (certificates, etcd data, logs, pid files, kubeconfig) lives in $KUBECRYPT_CLUSTER_DIR,
by default ~/.cache/kubecrypt/cluster. The admin kubeconfig is written to
<state>/admin.kubeconfig.
"""

import argparse
import datetime
import ipaddress
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE_ROOT = os.environ.get(
    "KUBECRYPT_CACHE",
    os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "kubecrypt"
    ),
)
STATE_DIR = os.environ.get("KUBECRYPT_CLUSTER_DIR", os.path.join(CACHE_ROOT, "cluster"))
LOOPBACK = "127.0.0.1"
SERVICE_CIDR = "10.96.0.0/16"
POD_CIDR = "10.244.0.1/16"
NODE_COUNT = int(os.environ.get("KUBECRYPT_NODES", "3"))
# A kernel of a current LTS distribution; preflight checks read nodeInfo.kernelVersion.
NODE_KERNEL = os.environ.get("KUBECRYPT_NODE_KERNEL", "6.8.0-45-generic")
KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node"
PROCESSES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
READY_TIMEOUT = 120


def log(message):
    print("localcluster: " + message, file=sys.stderr, flush=True)


def path(*parts):
    return os.path.join(STATE_DIR, *parts)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


# Certificates ----------------------------------------------------------------------------


def _write_private_key(key, filename):
    data = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with open(os.open(filename, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as out:
        out.write(data)


def _write_cert(cert, filename):
    with open(filename, "wb") as out:
        out.write(cert.public_bytes(serialization.Encoding.PEM))


def _new_cert(subject, public_key, issuer_name, signing_key, ca=False, usages=(), sans=()):
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    else:
        builder = builder.add_extension(
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
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(usages)), critical=False)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    return builder.sign(signing_key, hashes.SHA256())


def _name(common_name, organization=None):
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attributes)


def make_certificates():
    """Write a CA, serving and client certificates and the service account key pair."""
    os.makedirs(path("pki"), exist_ok=True)
    if os.path.exists(path("pki", "ca.crt")):
        return
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("kubecrypt-local-ca")
    ca_cert = _new_cert(ca_name, ca_key.public_key(), ca_name, ca_key, ca=True)
    _write_private_key(ca_key, path("pki", "ca.key"))
    _write_cert(ca_cert, path("pki", "ca.crt"))

    loopback_sans = [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address(LOOPBACK)),
    ]
    service_ip = next(ipaddress.ip_network(SERVICE_CIDR).hosts())
    leaf_specs = {
        "apiserver": (
            _name("kube-apiserver"),
            [ExtendedKeyUsageOID.SERVER_AUTH],
            loopback_sans
            + [
                x509.DNSName("kubernetes"),
                x509.DNSName("kubernetes.default"),
                x509.DNSName("kubernetes.default.svc"),
                x509.DNSName("kubernetes.default.svc.cluster.local"),
                x509.IPAddress(service_ip),
            ],
        ),
        "etcd-server": (
            _name("etcd"),
            # etcd dials its own client port for its gRPC gateway with this certificate.
            [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
            loopback_sans,
        ),
        "etcd-client": (_name("kube-apiserver-etcd-client"), [ExtendedKeyUsageOID.CLIENT_AUTH], []),
        "admin": (_name("kubecrypt-admin", "system:masters"), [ExtendedKeyUsageOID.CLIENT_AUTH], []),
        "controller-manager": (
            _name("system:kube-controller-manager"),
            [ExtendedKeyUsageOID.CLIENT_AUTH],
            [],
        ),
        "scheduler": (_name("system:kube-scheduler"), [ExtendedKeyUsageOID.CLIENT_AUTH], []),
        # kwok plays every kubelet, so it needs more than the node authorizer would grant.
        "kwok": (_name("kwok-controller", "system:masters"), [ExtendedKeyUsageOID.CLIENT_AUTH], []),
    }
    for name, (subject, usages, sans) in leaf_specs.items():
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _new_cert(subject, key.public_key(), ca_name, ca_key, usages=usages, sans=sans)
        _write_private_key(key, path("pki", name + ".key"))
        _write_cert(cert, path("pki", name + ".crt"))

    service_account_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    _write_private_key(service_account_key, path("pki", "sa.key"))
    with open(path("pki", "sa.pub"), "wb") as out:
        out.write(
            service_account_key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )


def write_kubeconfig(filename, user, server):
    """Write a kubeconfig for ``user`` whose certificate is pki/<user>.crt."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "kubecrypt-local",
                "cluster": {"server": server, "certificate-authority": path("pki", "ca.crt")},
            }
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate": path("pki", user + ".crt"),
                    "client-key": path("pki", user + ".key"),
                },
            }
        ],
        "contexts": [
            {"name": "kubecrypt-local", "context": {"cluster": "kubecrypt-local", "user": user}}
        ],
        "current-context": "kubecrypt-local",
    }
    with open(os.open(filename, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as out:
        json.dump(config, out, indent=2)


# Processes -------------------------------------------------------------------------------


def pid_file(name):
    return path("run", name + ".pid")


def running_pid(name):
    """Return the recorded pid of ``name`` if that process still runs that binary."""
    try:
        with open(pid_file(name)) as handle:
            pid = int(handle.read().strip())
    except (OSError, ValueError):
        return None
    try:
        with open("/proc/{0}/cmdline".format(pid), "rb") as handle:
            command = handle.read().split(b"\0")[0].decode()
    except OSError:
        return None
    # A recycled pid runs some other program: never signal it.
    if os.path.basename(command) != name:
        return None
    return pid


def recorded_pid_alive(name):
    """Whether the pid in the pid file of ``name`` is a live (not zombie) process.

    Right after Popen returns, /proc/<pid>/cmdline can still show the parent's command line,
    so this check looks only at the process state.
    """
    try:
        with open(pid_file(name)) as handle:
            pid = int(handle.read().strip())
        with open("/proc/{0}/stat".format(pid)) as handle:
            state = handle.read().rsplit(")", 1)[1].split()[0]
    except (OSError, ValueError, IndexError):
        return False
    return state not in ("Z", "X")


def launch(bin_dir, name, arguments):
    os.makedirs(path("run"), exist_ok=True)
    os.makedirs(path("logs"), exist_ok=True)
    log_file = open(path("logs", name + ".log"), "ab")
    process = subprocess.Popen(
        [os.path.join(bin_dir, name)] + arguments,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    with open(pid_file(name), "w") as handle:
        handle.write(str(process.pid))
    return process


def wait_for(description, check, timeout=READY_TIMEOUT, process_names=()):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name in process_names:
            if not recorded_pid_alive(name):
                raise SystemExit(
                    "localcluster: {0} exited while waiting for {1}; see {2}".format(
                        name, description, path("logs", name + ".log")
                    )
                )
        try:
            if check():
                return
        except Exception:  # noqa: BLE001 - any failure here means "not ready yet"
            pass
        time.sleep(0.5)
    raise SystemExit(
        "localcluster: timed out after {0} s waiting for {1}; logs are in {2}".format(
            timeout, description, path("logs")
        )
    )


def https_ok(url, cert_name):
    context = ssl.create_default_context(cafile=path("pki", "ca.crt"))
    context.load_cert_chain(path("pki", cert_name + ".crt"), path("pki", cert_name + ".key"))
    with urllib.request.urlopen(url, context=context, timeout=5) as response:
        return response.status == 200 and response.read().strip() == b"ok"


def build_binaries():
    output = subprocess.run(
        ["bash", os.path.join(HERE, "build.sh")], check=True, stdout=subprocess.PIPE, text=True
    ).stdout
    return output.strip().splitlines()[-1]


def read_ports():
    try:
        with open(path("ports.json")) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        ports = {
            "etcd_client": free_port(),
            "etcd_peer": free_port(),
            "apiserver": free_port(),
            "kwok": free_port(),
        }
        with open(path("ports.json"), "w") as handle:
            json.dump(ports, handle)
        return ports


def start(args):
    bin_dir = build_binaries()
    os.makedirs(STATE_DIR, exist_ok=True)
    make_certificates()
    ports = read_ports()
    server = "https://{0}:{1}".format(LOOPBACK, ports["apiserver"])
    write_kubeconfig(path("admin.kubeconfig"), "admin", server)
    for user in ("controller-manager", "scheduler", "kwok"):
        write_kubeconfig(path(user + ".kubeconfig"), user, server)
    pki = path("pki")

    if running_pid("etcd") is None:
        launch(
            bin_dir,
            "etcd",
            [
                "--name=kubecrypt-local",
                "--data-dir=" + path("etcd"),
                "--listen-client-urls=https://{0}:{1}".format(LOOPBACK, ports["etcd_client"]),
                "--advertise-client-urls=https://{0}:{1}".format(LOOPBACK, ports["etcd_client"]),
                "--listen-peer-urls=http://{0}:{1}".format(LOOPBACK, ports["etcd_peer"]),
                "--initial-advertise-peer-urls=http://{0}:{1}".format(LOOPBACK, ports["etcd_peer"]),
                "--initial-cluster=kubecrypt-local=http://{0}:{1}".format(
                    LOOPBACK, ports["etcd_peer"]
                ),
                "--cert-file=" + os.path.join(pki, "etcd-server.crt"),
                "--key-file=" + os.path.join(pki, "etcd-server.key"),
                "--client-cert-auth=true",
                "--trusted-ca-file=" + os.path.join(pki, "ca.crt"),
                "--listen-metrics-urls=",
                "--log-level=warn",
                "--unsafe-no-fsync=true",
            ],
        )
    wait_for(
        "etcd",
        lambda: _etcd_healthy(ports["etcd_client"]),
        process_names=("etcd",),
    )

    if running_pid("kube-apiserver") is None:
        launch(
            bin_dir,
            "kube-apiserver",
            [
                "--bind-address=" + LOOPBACK,
                "--advertise-address=" + LOOPBACK,
                "--secure-port={0}".format(ports["apiserver"]),
                "--etcd-servers=https://{0}:{1}".format(LOOPBACK, ports["etcd_client"]),
                "--etcd-cafile=" + os.path.join(pki, "ca.crt"),
                "--etcd-certfile=" + os.path.join(pki, "etcd-client.crt"),
                "--etcd-keyfile=" + os.path.join(pki, "etcd-client.key"),
                "--tls-cert-file=" + os.path.join(pki, "apiserver.crt"),
                "--tls-private-key-file=" + os.path.join(pki, "apiserver.key"),
                "--client-ca-file=" + os.path.join(pki, "ca.crt"),
                "--service-account-key-file=" + os.path.join(pki, "sa.pub"),
                "--service-account-signing-key-file=" + os.path.join(pki, "sa.key"),
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                "--service-cluster-ip-range=" + SERVICE_CIDR,
                "--authorization-mode=RBAC",
                "--allow-privileged=true",
                "--enable-priority-and-fairness=false",
                "--profiling=false",
                # The kubernetes Service cannot point at a loopback address, and nothing in
                # this cluster needs it to.
                "--endpoint-reconciler-type=none",
                "--v=1",
            ],
        )
    wait_for(
        "kube-apiserver",
        lambda: https_ok(server + "/readyz", "admin"),
        process_names=("etcd", "kube-apiserver"),
    )

    if running_pid("kube-controller-manager") is None:
        launch(
            bin_dir,
            "kube-controller-manager",
            [
                "--kubeconfig=" + path("controller-manager.kubeconfig"),
                "--authentication-kubeconfig=" + path("controller-manager.kubeconfig"),
                "--authorization-kubeconfig=" + path("controller-manager.kubeconfig"),
                "--bind-address=" + LOOPBACK,
                "--secure-port=0",
                "--leader-elect=false",
                "--service-account-private-key-file=" + os.path.join(pki, "sa.key"),
                "--root-ca-file=" + os.path.join(pki, "ca.crt"),
                "--use-service-account-credentials=true",
                "--controllers=*,-nodeipam,-cloud-node-lifecycle,-service-lb-controller",
                "--concurrent-deployment-syncs=5",
                "--v=1",
            ],
        )
    if running_pid("kube-scheduler") is None:
        launch(
            bin_dir,
            "kube-scheduler",
            [
                "--kubeconfig=" + path("scheduler.kubeconfig"),
                "--authentication-kubeconfig=" + path("scheduler.kubeconfig"),
                "--authorization-kubeconfig=" + path("scheduler.kubeconfig"),
                "--bind-address=" + LOOPBACK,
                "--secure-port=0",
                "--leader-elect=false",
                "--v=1",
            ],
        )
    if running_pid("kwok") is None:
        launch(
            bin_dir,
            "kwok",
            [
                "--kubeconfig=" + path("kwok.kubeconfig"),
                "--config=" + os.path.join(bin_dir, "kwok-stages.yaml"),
                "--manage-all-nodes=false",
                "--manage-nodes-with-annotation-selector={0}=fake".format(KWOK_NODE_ANNOTATION),
                "--cidr=" + POD_CIDR,
                "--node-ip=" + LOOPBACK,
                "--server-address={0}:{1}".format(LOOPBACK, ports["kwok"]),
            ],
        )

    register_nodes()
    wait_for(
        "{0} Ready nodes".format(NODE_COUNT),
        lambda: _ready_nodes() >= NODE_COUNT,
        process_names=PROCESSES,
    )
    wait_for(
        "the default ServiceAccount",
        lambda: _kubectl(["get", "serviceaccount", "default", "-n", "default"]).returncode == 0,
        process_names=PROCESSES,
    )
    print(path("admin.kubeconfig"))


def _etcd_healthy(port):
    url = "https://{0}:{1}/health".format(LOOPBACK, port)
    context = ssl.create_default_context(cafile=path("pki", "ca.crt"))
    context.load_cert_chain(path("pki", "etcd-client.crt"), path("pki", "etcd-client.key"))
    with urllib.request.urlopen(url, context=context, timeout=5) as response:
        return json.loads(response.read()).get("health") == "true"


def _kubectl(arguments, stdin=None):
    return subprocess.run(
        ["kubectl", "--kubeconfig", path("admin.kubeconfig")] + arguments,
        input=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
    )


def node_manifest(index):
    name = "kubecrypt-worker-{0}".format(index)
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {KWOK_NODE_ANNOTATION: "fake"},
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "kwok",
            },
        },
        "spec": {},
        "status": {
            "allocatable": {"cpu": "8", "memory": "32Gi", "pods": "110"},
            "capacity": {"cpu": "8", "memory": "32Gi", "pods": "110"},
            "nodeInfo": {
                "architecture": "amd64",
                "kernelVersion": NODE_KERNEL,
                "operatingSystem": "linux",
                "osImage": "Ubuntu 24.04.1 LTS",
                "kubeletVersion": "v1.36.3",
                "containerRuntimeVersion": "containerd://2.1.4",
            },
        },
    }


def register_nodes():
    """Create the simulated nodes; kwok then marks them Ready and keeps their heartbeat."""
    for index in range(1, NODE_COUNT + 1):
        manifest = node_manifest(index)
        name = manifest["metadata"]["name"]
        if _kubectl(["get", "node", name]).returncode == 0:
            continue
        created = _kubectl(["create", "-f", "-"], stdin=json.dumps(manifest))
        if created.returncode != 0:
            raise SystemExit("localcluster: creating node {0} failed: {1}".format(name, created.stderr))
        # The API server drops status on create; set it through the status subresource.
        patched = _kubectl(
            [
                "patch",
                "node",
                name,
                "--subresource=status",
                "--type=merge",
                "-p",
                json.dumps({"status": manifest["status"]}),
            ]
        )
        if patched.returncode != 0:
            raise SystemExit("localcluster: setting the status of node {0} failed: {1}".format(name, patched.stderr))


def _ready_nodes():
    listed = _kubectl(["get", "nodes", "-o", "json"])
    if listed.returncode != 0:
        return 0
    count = 0
    for node in json.loads(listed.stdout)["items"]:
        for condition in node.get("status", {}).get("conditions", []):
            if condition["type"] == "Ready" and condition["status"] == "True":
                count += 1
    return count


def stop(args):
    """Stop, in reverse start order, each process whose pid file this script wrote."""
    stopped = []
    for name in reversed(PROCESSES):
        pid = running_pid(name)
        if pid is None:
            continue
        os.kill(pid, signal.SIGTERM)
        stopped.append((name, pid))
    deadline = time.monotonic() + 20
    for name, pid in stopped:
        while running_pid(name) == pid and time.monotonic() < deadline:
            time.sleep(0.2)
        if running_pid(name) == pid:
            os.kill(pid, signal.SIGKILL)
        log("stopped {0} (pid {1})".format(name, pid))
    for name in PROCESSES:
        try:
            os.remove(pid_file(name))
        except OSError:
            pass


def status(args):
    try:
        with open(path("ports.json")) as handle:
            ports = json.load(handle)
        server = "https://{0}:{1}".format(LOOPBACK, ports["apiserver"])
        ready = https_ok(server + "/readyz", "admin")
    except (OSError, ValueError, KeyError):
        ready = False
    for name in PROCESSES:
        pid = running_pid(name)
        print("{0}: {1}".format(name, "running (pid {0})".format(pid) if pid else "stopped"))
    print("api server: {0}".format("ready" if ready else "not ready"))
    print("kubeconfig: {0}".format(path("admin.kubeconfig")))
    return 0 if ready else 1


def reset(args):
    import shutil

    stop(args)
    shutil.rmtree(STATE_DIR, ignore_errors=True)
    start(args)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["start", "stop", "status", "reset"])
    args = parser.parse_args()
    handler = {"start": start, "stop": stop, "status": status, "reset": reset}[args.command]
    result = handler(args)
    sys.exit(result or 0)


if __name__ == "__main__":
    main()
