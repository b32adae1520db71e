"""Keys from the collection's own code in the Linux kernel's IPsec (XFRM) stack.

Two network namespaces created here, joined by a veth pair that exists only inside them, get
ESP transport-mode states and policies with key lines from ``generate_key`` and
``parse_key_line``. A UDP echo then crosses the pair, and a raw AF_PACKET socket on the veth
checks that the frames are ESP with the expected SPIs and carry no plaintext. The length tests
check that the kernel accepts and rejects the same key and ICV lengths as the parser.

The tests need root, iproute2 and a kernel with ESP and rfc4106(gcm(aes)); elsewhere every test
is skipped. They never touch the host's own interfaces, addresses or XFRM states: every ``ip``
command runs with ``-n`` or ``netns exec`` in a namespace that a fixture created and deletes.
"""

import collections
import itertools
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys

import pytest

from ansible_collections.kubecrypt.pod_encryption.plugins.module_utils._ipsec_key import (
    KeyLineError,
    generate_key,
    next_spi,
    parse_key_line,
)

ALGORITHM = "rfc4106(gcm(aes))"
SKIP_REASON = "kernel lacks rfc4106(gcm(aes)) in /proc/crypto"
# Addresses from the 198.18.0.0/15 benchmarking range (RFC 2544), used only inside the namespaces.
ADDRESS_A = "198.18.0.1"
ADDRESS_B = "198.18.0.2"
PREFIX_LENGTH = 24
VETH_A = "kcx-a"
VETH_B = "kcx-b"
UDP_PORT = 40404
COMMAND_TIMEOUT = 30
# A fresh suffix per test run keeps the markers from matching anything else in a frame.
REQUEST_MARKER = b"kubecrypt-plaintext-request-" + secrets.token_hex(8).encode()
REPLY_MARKER = b"kubecrypt-plaintext-reply-" + secrets.token_hex(8).encode()
ETHERTYPE_IPV4 = 0x0800
PROTOCOL_UDP = 17
PROTOCOL_ESP = 50
_namespace_numbers = itertools.count(1)

# Reads frames from one interface until stdin closes, then prints them as a JSON list of hex.
CAPTURE_SCRIPT = r"""
import json, select, socket, sys, time
ETH_P_ALL = 0x0003
sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
sock.bind((sys.argv[1], 0))
print("ready", flush=True)
frames = []
deadline = time.monotonic() + float(sys.argv[2])
while time.monotonic() < deadline:
    readable, _, _ = select.select([sock, sys.stdin], [], [], 0.2)
    if sock in readable:
        frames.append(sock.recv(65535).hex())
    if sys.stdin in readable and sys.stdin.readline() == "":
        break
while True:
    readable, _, _ = select.select([sock], [], [], 0)
    if not readable:
        break
    frames.append(sock.recv(65535).hex())
print(json.dumps(frames), flush=True)
"""

# Replies to one datagram with the reply marker and prints the datagram it received, as hex.
ECHO_SCRIPT = r"""
import socket, sys
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind((sys.argv[1], int(sys.argv[2])))
sock.settimeout(float(sys.argv[4]))
print("ready", flush=True)
data, peer = sock.recvfrom(65535)
sock.sendto(bytes.fromhex(sys.argv[3]), peer)
print(data.hex(), flush=True)
"""

# Sends the request marker and prints the reply as hex, or an empty line when none arrives.
SEND_SCRIPT = r"""
import socket, sys
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind((sys.argv[1], 0))
sock.settimeout(2)
reply = b""
for attempt in range(3):
    sock.sendto(bytes.fromhex(sys.argv[4]), (sys.argv[2], int(sys.argv[3])))
    try:
        reply = sock.recv(65535)
        break
    except socket.timeout:
        continue
print(reply.hex(), flush=True)
"""

Packet = collections.namedtuple("Packet", "source destination protocol payload")
Exchange = collections.namedtuple("Exchange", "frames received reply spi_a_to_b spi_b_to_a")


def run(command):
    """Run a command and return the finished process, or raise with its output on failure."""
    process = subprocess.run(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=COMMAND_TIMEOUT,
        check=False,
    )
    if process.returncode != 0:
        raise AssertionError(
            "{0} failed with exit code {1}: {2}".format(
                " ".join(command), process.returncode, process.stderr
            )
        )
    return process


def ip_in(namespace, arguments):
    """Return an ip command that runs in ``namespace``, with ``arguments`` split on spaces."""
    return ["ip", "-n", namespace] + arguments.split(" ")


def add_state(namespace, source, destination, spi, key_hex, icv_bits):
    """Add an ESP transport-mode state and return the finished process, which may have failed."""
    command = ip_in(
        namespace,
        "xfrm state add src {0} dst {1} proto esp spi {2} reqid {2} mode transport "
        "aead {3} 0x{4} {5}".format(source, destination, spi, ALGORITHM, key_hex, icv_bits),
    )
    return subprocess.run(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=COMMAND_TIMEOUT,
        check=False,
    )


def state_exists(namespace, source, destination, spi):
    command = ip_in(
        namespace,
        "xfrm state get src {0} dst {1} proto esp spi {2}".format(source, destination, spi),
    )
    process = subprocess.run(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=COMMAND_TIMEOUT,
        check=False,
    )
    return process.returncode == 0


def add_policy(namespace, source, destination, direction, spi):
    run(
        ip_in(
            namespace,
            "xfrm policy add src {0}/32 dst {1}/32 dir {2} tmpl src {0} dst {1} proto esp "
            "reqid {3} mode transport".format(source, destination, direction, spi),
        )
    )


def new_namespace_name():
    return "kcx-{0}-{1}".format(os.getpid(), next(_namespace_numbers))


def delete_namespace(name):
    # Deleting the namespace also deletes its veth end, its states and its policies.
    subprocess.run(
        ["ip", "netns", "delete", name], stderr=subprocess.DEVNULL, timeout=COMMAND_TIMEOUT,
        check=False,
    )


def probe_rfc4106():
    """Return whether the kernel offers ESP with rfc4106(gcm(aes)).

    /proc/crypto lists a template such as rfc4106(gcm(aes)) only after something has
    instantiated it, so when it is not listed, adding one state in a scratch namespace makes the
    kernel instantiate it. That fails when the kernel has no ESP or no GCM.
    """
    with open("/proc/crypto") as crypto:
        if ALGORITHM in crypto.read():
            return True
    name = new_namespace_name()
    if subprocess.run(["ip", "netns", "add", name], stderr=subprocess.DEVNULL, check=False).returncode != 0:
        return False
    try:
        listed = subprocess.run(
            ["ip", "-n", name, "xfrm", "state", "list"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
        if listed.returncode != 0:
            return False
        key = generate_key(spi=1)
        added = add_state(name, ADDRESS_A, ADDRESS_B, key.spi, key.key_hex, key.icv_bits)
        return added.returncode == 0
    finally:
        delete_namespace(name)


@pytest.fixture(scope="module", autouse=True)
def xfrm_kernel():
    """Skip every test unless this process can create namespaces and XFRM states."""
    if sys.platform != "linux":
        pytest.skip("XFRM exists on Linux only")
    if os.geteuid() != 0:
        pytest.skip("needs root to create network namespaces and XFRM states")
    if shutil.which("ip") is None:
        pytest.skip("needs the ip command from iproute2")
    if not probe_rfc4106():
        pytest.skip(SKIP_REASON)


@pytest.fixture
def namespace():
    """A network namespace of its own, deleted afterwards."""
    name = new_namespace_name()
    run(["ip", "netns", "add", name])
    yield name
    delete_namespace(name)


@pytest.fixture(scope="module")
def peers():
    """Namespaces A and B joined by a veth pair, each with ESP states and policies both ways.

    Each direction has its own key, generated and formatted by the collection and read back by
    its parser, and its own SPI: the key's SPI from A to B, the next SPI from B to A.
    """
    names = (new_namespace_name(), new_namespace_name())
    created = []
    try:
        for name in names:
            run(["ip", "netns", "add", name])
            created.append(name)
        namespace_a, namespace_b = names
        # The veth pair is created in A with its peer end moved straight into B.
        run(
            ip_in(
                namespace_a,
                "link add {0} type veth peer name {1} netns {2}".format(
                    VETH_A, VETH_B, namespace_b
                ),
            )
        )
        for name, device, address in (
            (namespace_a, VETH_A, ADDRESS_A),
            (namespace_b, VETH_B, ADDRESS_B),
        ):
            run(ip_in(name, "link set lo up"))
            run(ip_in(name, "addr add {0}/{1} dev {2}".format(address, PREFIX_LENGTH, device)))
            run(ip_in(name, "link set {0} up".format(device)))

        a_to_b = parse_key_line(generate_key(spi=3).line())
        b_to_a = parse_key_line(generate_key(spi=next_spi(a_to_b.spi)).line())
        for name in names:
            for key, source, destination in (
                (a_to_b, ADDRESS_A, ADDRESS_B),
                (b_to_a, ADDRESS_B, ADDRESS_A),
            ):
                added = add_state(name, source, destination, key.spi, key.key_hex, key.icv_bits)
                assert added.returncode == 0, added.stderr
        add_policy(namespace_a, ADDRESS_A, ADDRESS_B, "out", a_to_b.spi)
        add_policy(namespace_a, ADDRESS_B, ADDRESS_A, "in", b_to_a.spi)
        add_policy(namespace_b, ADDRESS_B, ADDRESS_A, "out", b_to_a.spi)
        add_policy(namespace_b, ADDRESS_A, ADDRESS_B, "in", a_to_b.spi)
        yield namespace_a, namespace_b, a_to_b, b_to_a
    finally:
        for name in created:
            delete_namespace(name)


def python_in(namespace, script, *arguments):
    """Return the command that runs a Python ``script`` in ``namespace``."""
    return ["ip", "netns", "exec", namespace, sys.executable, "-c", script] + list(arguments)


def start_in(namespace, script, *arguments):
    """Start a Python script in ``namespace`` and wait until it prints its ready line."""
    process = subprocess.Popen(
        python_in(namespace, script, *arguments),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    if process.stdout.readline().strip() != "ready":
        process.kill()
        raise AssertionError(
            "helper in {0} did not start: {1}".format(namespace, process.stderr.read())
        )
    return process


@pytest.fixture(scope="module")
def exchange(peers):
    """Send one UDP datagram from A to B and its reply back, capturing B's veth meanwhile."""
    namespace_a, namespace_b, a_to_b, b_to_a = peers
    # The states are in transport mode, because in tunnel mode the kernel passes the decrypted
    # inner packet through the receiving device's packet taps again, so the capture would show
    # plaintext that never crossed the wire.
    helpers = []
    try:
        capture = start_in(namespace_b, CAPTURE_SCRIPT, VETH_B, str(COMMAND_TIMEOUT))
        helpers.append(capture)
        echo = start_in(
            namespace_b, ECHO_SCRIPT, ADDRESS_B, str(UDP_PORT), REPLY_MARKER.hex(), "10"
        )
        helpers.append(echo)
        sender = run(
            python_in(
                namespace_a,
                SEND_SCRIPT,
                ADDRESS_A,
                ADDRESS_B,
                str(UDP_PORT),
                REQUEST_MARKER.hex(),
            )
        )
        received = echo.communicate(timeout=COMMAND_TIMEOUT)[0]
        frames_json, capture_errors = capture.communicate(input="", timeout=COMMAND_TIMEOUT)
    finally:
        for helper in helpers:
            if helper.poll() is None:
                helper.kill()
                helper.wait()
    assert capture.returncode == 0, capture_errors
    return Exchange(
        frames=[bytes.fromhex(frame) for frame in json.loads(frames_json)],
        received=bytes.fromhex(received.strip()),
        reply=bytes.fromhex(sender.stdout.strip()),
        spi_a_to_b=a_to_b.spi,
        spi_b_to_a=b_to_a.spi,
    )


def ipv4_packets(frames):
    """Return the IPv4 packets in Ethernet frames as Packet tuples."""
    packets = []
    for frame in frames:
        if len(frame) < 34 or int.from_bytes(frame[12:14], "big") != ETHERTYPE_IPV4:
            continue
        header = frame[14:]
        header_length = (header[0] & 0x0F) * 4
        packets.append(
            Packet(
                source=socket.inet_ntoa(header[12:16]),
                destination=socket.inet_ntoa(header[16:20]),
                protocol=header[9],
                payload=header[header_length:],
            )
        )
    return packets


def esp_spis(packets, source, destination):
    """Return the SPIs of the ESP packets from ``source`` to ``destination``."""
    return {
        int.from_bytes(packet.payload[:4], "big")
        for packet in packets
        if packet.protocol == PROTOCOL_ESP
        and packet.source == source
        and packet.destination == destination
    }


def test_echo_request_decrypted_in_b(exchange):
    assert exchange.received == REQUEST_MARKER


def test_echo_reply_decrypted_in_a(exchange):
    assert exchange.reply == REPLY_MARKER


def test_wire_esp_spi_a_to_b(exchange):
    packets = ipv4_packets(exchange.frames)
    assert esp_spis(packets, ADDRESS_A, ADDRESS_B) == {exchange.spi_a_to_b}


def test_wire_esp_spi_b_to_a(exchange):
    packets = ipv4_packets(exchange.frames)
    assert esp_spis(packets, ADDRESS_B, ADDRESS_A) == {exchange.spi_b_to_a}


def test_wire_has_no_plain_udp(exchange):
    between_peers = [
        packet
        for packet in ipv4_packets(exchange.frames)
        if {packet.source, packet.destination} == {ADDRESS_A, ADDRESS_B}
    ]
    assert between_peers
    assert [packet for packet in between_peers if packet.protocol == PROTOCOL_UDP] == []


def test_wire_has_no_request_marker(exchange):
    assert exchange.frames
    assert [frame for frame in exchange.frames if REQUEST_MARKER in frame] == []


def test_wire_has_no_reply_marker(exchange):
    assert exchange.frames
    assert [frame for frame in exchange.frames if REPLY_MARKER in frame] == []


@pytest.mark.parametrize("key_bits,material_bytes", [(128, 20), (192, 28), (256, 36)])
def test_kernel_accepts_key_size(namespace, key_bits, material_bytes):
    key = parse_key_line(generate_key(spi=5, key_bits=key_bits).line())
    assert len(key.key_hex) == 2 * material_bytes
    added = add_state(namespace, ADDRESS_A, ADDRESS_B, key.spi, key.key_hex, key.icv_bits)
    assert added.returncode == 0, added.stderr
    assert state_exists(namespace, ADDRESS_A, ADDRESS_B, key.spi)


# 16 bytes is an AES-128 key without its salt, 39 is far off, and the others are one byte off
# an accepted length.
@pytest.mark.parametrize("material_bytes", [16, 19, 21, 27, 29, 35, 37, 39])
def test_kernel_rejects_key_length(namespace, material_bytes):
    key_hex = secrets.token_hex(material_bytes)
    with pytest.raises(KeyLineError, match="hex characters"):
        parse_key_line("5+ {0} {1} 128".format(ALGORITHM, key_hex))
    added = add_state(namespace, ADDRESS_A, ADDRESS_B, 5, key_hex, 128)
    assert added.returncode != 0
    assert not state_exists(namespace, ADDRESS_A, ADDRESS_B, 5)


@pytest.mark.parametrize("icv_bits", [96, 128])
def test_kernel_accepts_icv(namespace, icv_bits):
    key = parse_key_line(generate_key(spi=6, icv_bits=icv_bits).line())
    assert key.icv_bits == icv_bits
    added = add_state(namespace, ADDRESS_A, ADDRESS_B, key.spi, key.key_hex, key.icv_bits)
    assert added.returncode == 0, added.stderr
    assert state_exists(namespace, ADDRESS_A, ADDRESS_B, key.spi)


def test_kernel_rejects_icv_256(namespace):
    key_hex = secrets.token_hex(20)
    with pytest.raises(KeyLineError, match="ICV length 256 is not supported"):
        parse_key_line("6+ {0} {1} 256".format(ALGORITHM, key_hex))
    added = add_state(namespace, ADDRESS_A, ADDRESS_B, 6, key_hex, 256)
    assert added.returncode != 0
    assert not state_exists(namespace, ADDRESS_A, ADDRESS_B, 6)


def test_kernel_accepts_icv_64_parser_rejects(namespace):
    """The kernel accepts a 64-bit ICV, but Cilium does not, so the parser rejects it."""
    key_hex = secrets.token_hex(20)
    with pytest.raises(KeyLineError, match="ICV length 64 is not supported"):
        parse_key_line("6+ {0} {1} 64".format(ALGORITHM, key_hex))
    added = add_state(namespace, ADDRESS_A, ADDRESS_B, 6, key_hex, 64)
    assert added.returncode == 0, added.stderr
    assert state_exists(namespace, ADDRESS_A, ADDRESS_B, 6)
