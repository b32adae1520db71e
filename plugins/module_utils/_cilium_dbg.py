# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kubecrypt maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Parse the text output of ``cilium-dbg status`` and ``cilium-dbg encrypt status``.

The formats come from the agent's CLI (``pkg/client`` ``FormatStatusResponse`` and
``cilium-dbg/cmd/encrypt_status.go`` in cilium/cilium). The agent pads some values with
trailing spaces, indents sub-lines with a tab (or spaces once pasted elsewhere), and newer
releases print a 64-bit sequence limit. Unknown top-level lines are ignored, because releases
add lines. A known line with an unreadable value raises OutputFormatError, and so does output
without an ``Encryption:`` line. This file does no I/O.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

# Encryption modes as the agent prints them, mapped to the names cilium-config uses.
MODES = {
    "disabled": "disabled",
    "ipsec": "ipsec",
    "wireguard": "wireguard",
    "ztunnel": "ztunnel",
}
# The agent's CLI was renamed from cilium to cilium-dbg in Cilium 1.15.
CLI_RENAMED_IN = (1, 15)

_WIREGUARD_FIELDS = re.compile(
    r"\A\[(?:NodeEncryption: (?P<node>[A-Za-z]+), ?)?(?P<ifaces>.*)\]\Z"
)
_WIREGUARD_INTERFACE = re.compile(
    r"(?P<name>[^\s,()]+) \(Pubkey: (?P<key>[^,]*), Port: (?P<port>[^,]*), Peers: (?P<peers>[^)]*)\)"
)
_DIGITS = re.compile(r"\A[0-9]+\Z")
_HEX = re.compile(r"\A0[xX][0-9a-fA-F]+\Z")
_COUNTER = re.compile(r"\A(?P<name>[A-Za-z][A-Za-z0-9_]*)\s*:?\s+(?P<value>\S+)\Z")
_XFRM_COUNTER_NAME = re.compile(r"\AXfrm[A-Za-z]+\Z")
_VERSION = re.compile(
    r"\Av?(?P<major>[0-9]+)\.(?P<minor>[0-9]+)(?:\.(?P<patch>[0-9]+))?"
)


class OutputFormatError(ValueError):
    """Agent output that does not have the format this parser reads."""


def parse_status(text):
    """Parse the ``Encryption:`` line of ``cilium-dbg status`` output.

    The text may be the whole status output or the line alone. The dict returned has:

    - ``mode``: ``ipsec``, ``wireguard``, ``disabled`` or ``ztunnel``;
    - ``node_encryption``: ``Enabled``, ``Disabled``, ``OptedOut``, or None where the release
      does not print it;
    - ``interfaces``: the WireGuard devices, each with ``name``, ``public_key``, ``port`` and
      ``peers``;
    - ``message``: the error text the agent prints in place of the details, or None.
    """
    line = _find_encryption_line(text)
    if line is None:
        raise OutputFormatError(
            "The cilium-dbg status output has no 'Encryption:' line. The brief form "
            "(--brief) and an agent that failed to answer print none: run cilium-dbg status "
            "without options and check that the agent is running."
        )

    value = line.split(":", 1)[1].strip()
    words = re.split(r"\s+", value, maxsplit=1)
    mode = _normalise_mode(words[0], "cilium-dbg status")
    details = words[1].strip() if len(words) > 1 else ""
    result = {"mode": mode, "node_encryption": None, "interfaces": [], "message": None}

    if mode == "wireguard" and details.startswith("["):
        node_encryption, interfaces = _parse_wireguard_fields(details)
        result["node_encryption"] = node_encryption
        result["interfaces"] = interfaces
    elif details:
        # The agent prints an error message in place of the details when it cannot read them.
        result["message"] = details
    return result


def parse_encrypt_status(text):
    """Parse ``cilium-dbg encrypt status`` output into a dict.

    The dict has ``mode`` (as in parse_status, or None when the agent did not report one),
    ``message`` (the ``Msg:`` line, or None), ``ipsec`` and ``wireguard``. ``ipsec`` is None
    unless the output has IPsec lines, and then contains ``decryption_interfaces`` (a list),
    ``keys_in_use``, ``max_seq_number`` (the text), ``max_seq_used`` and ``max_seq_limit``
    (integers, None for ``N/A``), ``errors`` and ``xfrm_errors`` (counter name to value).
    ``wireguard`` lists the devices with ``name``, ``public_key`` and ``peers``.
    """
    lines = (text or "").splitlines()
    result = {"mode": None, "message": None, "ipsec": None, "wireguard": []}
    found_mode = False
    section = None

    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        if raw[0] in " \t":
            _parse_indented_line(result, section, raw.strip(), number)
            continue
        key, separator, value = raw.partition(":")
        if not separator:
            continue
        key = key.strip()
        value = value.strip()
        section = None

        if key == "Encryption":
            result["mode"] = (
                _normalise_mode(value, "cilium-dbg encrypt status") if value else None
            )
            found_mode = True
        elif key == "Msg":
            result["message"] = value
        elif key == "Decryption interface(s)":
            ipsec = _ipsec_section(result)
            ipsec["decryption_interfaces"] = [
                name.strip() for name in value.split(",") if name.strip()
            ]
        elif key == "Keys in use":
            _ipsec_section(result)["keys_in_use"] = _parse_count(key, value, number)
        elif key == "Max Seq. Number":
            _ipsec_section(result).update(_parse_sequence(value, number))
        elif key == "Errors":
            _ipsec_section(result)["errors"] = _parse_count(key, value, number)
            section = "errors"
        elif key == "Interface":
            result["wireguard"].append(
                {"name": value, "public_key": None, "peers": None}
            )
            section = "interface"
        elif _XFRM_COUNTER_NAME.match(key) and result["ipsec"] is not None:
            # Releases before the counters were indented printed them at the line start.
            result["ipsec"]["xfrm_errors"][key] = _parse_count(key, value, number)
            section = "errors"

    if not found_mode:
        raise OutputFormatError(
            "The cilium-dbg encrypt status output has no 'Encryption:' line, so it is not "
            "the output of that command (an exec error or an unsupported release)."
        )
    return result


def cli_for_version(version):
    """Return the agent CLI name, ``cilium`` before 1.15 and ``cilium-dbg`` from 1.15 on.

    ``version`` is a tuple such as (1, 14, 9). None, an unknown version, returns ``cilium-dbg``.
    """
    if version is not None and tuple(version[:2]) < CLI_RENAMED_IN:
        return "cilium"
    return "cilium-dbg"


def parse_version(text):
    """Parse ``1.14``, ``v1.16.5`` or ``1.17.0-rc.1`` into a tuple of integers, or None."""
    match = _VERSION.match((text or "").strip())
    if not match:
        return None
    parts = [int(match.group("major")), int(match.group("minor"))]
    if match.group("patch") is not None:
        parts.append(int(match.group("patch")))
    return tuple(parts)


def version_from_image(image):
    """Return the Cilium version in an image reference's tag, or None.

    ``quay.io/cilium/cilium:v1.16.5@sha256:...`` gives (1, 16, 5). A reference by digest only,
    or a tag such as ``latest``, gives None.
    """
    if not image:
        return None
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    if ":" not in last:
        return None
    return parse_version(last.rsplit(":", 1)[1])


def _find_encryption_line(text):
    for raw in (text or "").splitlines():
        if raw.strip().startswith("Encryption:"):
            return raw.strip()
    return None


def _normalise_mode(word, command):
    mode = MODES.get(word.strip().lower())
    if mode is None:
        raise OutputFormatError(
            "The {0} output reports encryption mode {1!r}, which is not one of Disabled, "
            "IPsec, Wireguard or Ztunnel.".format(command, word.strip())
        )
    return mode


def _parse_wireguard_fields(details):
    match = _WIREGUARD_FIELDS.match(details)
    if not match:
        raise OutputFormatError(
            "The WireGuard details {0!r} in the cilium-dbg status output do not have the "
            "form '[NodeEncryption: <state>, <device> (Pubkey: <key>, Port: <port>, Peers: "
            "<count>)]'.".format(details)
        )
    interfaces = []
    text = match.group("ifaces").strip()
    position = 0
    for found in _WIREGUARD_INTERFACE.finditer(text):
        if text[position : found.start()].strip(", "):
            break
        interfaces.append(
            {
                "name": found.group("name"),
                "public_key": found.group("key").strip(),
                "port": _parse_count("Port", found.group("port"), None),
                "peers": _parse_count("Peers", found.group("peers"), None),
            }
        )
        position = found.end()
    if text[position:].strip(", "):
        raise OutputFormatError(
            "The WireGuard device list {0!r} in the cilium-dbg status output does not have "
            "the form '<device> (Pubkey: <key>, Port: <port>, Peers: <count>)'.".format(
                text
            )
        )
    return match.group("node"), interfaces


def _ipsec_section(result):
    if result["ipsec"] is None:
        result["ipsec"] = {
            "decryption_interfaces": [],
            "keys_in_use": None,
            "max_seq_number": None,
            "max_seq_used": None,
            "max_seq_limit": None,
            "errors": None,
            "xfrm_errors": {},
        }
    return result["ipsec"]


def _parse_indented_line(result, section, text, number):
    if section == "errors":
        match = _COUNTER.match(text)
        if not match:
            raise OutputFormatError(
                "Line {0} of the cilium-dbg encrypt status output, {1!r}, is not an XFRM "
                "error counter of the form '<name>: <count>'.".format(number, text)
            )
        name = match.group("name")
        result["ipsec"]["xfrm_errors"][name] = _parse_count(
            name, match.group("value"), number
        )
        return
    if section == "interface":
        key, separator, value = text.partition(":")
        interface = result["wireguard"][-1]
        if key.strip() == "Public key":
            interface["public_key"] = value.strip()
        elif key.strip() == "Number of peers":
            interface["peers"] = _parse_count("Number of peers", value.strip(), number)
        return
    raise OutputFormatError(
        "Line {0} of the cilium-dbg encrypt status output, {1!r}, is indented but follows "
        "neither an 'Errors:' nor an 'Interface:' line.".format(number, text)
    )


def _parse_count(name, value, number):
    value = value.strip()
    if not _DIGITS.match(value):
        where = " on line {0}".format(number) if number else ""
        raise OutputFormatError(
            "The value of {0!r}{1} is {2!r}, not a whole number.".format(
                name, where, value
            )
        )
    return int(value)


def _parse_sequence(value, number):
    """Split ``0x1e3/0xffffffff`` into the highest sequence number used and its limit."""
    parsed = {"max_seq_number": value, "max_seq_used": None, "max_seq_limit": None}
    if value in ("", "N/A"):
        return parsed
    used, separator, limit = value.partition("/")
    if not _HEX.match(used) or (separator and not _HEX.match(limit)):
        raise OutputFormatError(
            "The value of 'Max Seq. Number' on line {0} is {1!r}, not of the form "
            "'0x<used>/0x<limit>' or 'N/A'.".format(number, value)
        )
    parsed["max_seq_used"] = int(used, 16)
    if separator:
        parsed["max_seq_limit"] = int(limit, 16)
    return parsed
