#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kubecrypt maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: encryption_info
short_description: Report whether Cilium's transparent encryption is on, node by node
version_added: 0.1.0
author:
  - kubecrypt maintainers (@kubecrypt)
description:
  - Reads the Cilium side of the cluster's encryption posture and runs a named check on each part of it.
    The module changes nothing. It reports, and O(fail_on_error) decides whether failed checks fail the task.
  - From the ConfigMap C(cilium-config) it reads the encryption mode and the flags that shape it, such as
    C(enable-ipsec), C(enable-wireguard), C(encrypt-node), the strict mode keys, C(ipsec-key-file),
    C(enable-ipsec-key-watcher) and C(ipsec-key-rotation-duration).
  - From each CiliumNode it reads the IPsec SPI the node uses, C(spec.encryption.key), and the WireGuard public
    key the node publishes in the annotation C(network.cilium.io/wg-pub-key).
  - For IPsec it reads the key Secret, and returns only the SPI and other metadata of the key, never the key.
  - Where an agent really runs, it runs C(cilium-dbg status) and C(cilium-dbg encrypt status) in the
    C(cilium-agent) container of the agent pod on each node, and checks what the agent reports.
  - Only CiliumNodes named after a Node of the cluster count. The names of the others, left behind by
    deleted nodes, are returned in RV(ignored_ciliumnodes).
options:
  expected_type:
    description:
      - The encryption type the cluster should use. A different mode in C(cilium-config) fails the
        C(encryption_mode) check, and the node checks test for this type.
      - When unset, the checks test for the mode that C(cilium-config) turns on, and encryption that is off
        fails the C(encryption_mode) check.
    type: str
    choices: [ipsec, wireguard]
  namespace:
    description:
      - Namespace that Cilium runs in, which contains C(cilium-config), the IPsec key Secret and the agent pods.
    type: str
    default: kube-system
  exec_agents:
    description:
      - Whether to run the agent commands in the agent pods.
      - V(auto) runs them in every Running agent pod on a node that kwok does not simulate. A node that kwok
        simulates, the annotation C(kwok.x-k8s.io/node) being V(fake), has no agent process to ask. Such a node,
        and a node where the commands fail, is reported as not exec'd with the reason, and only what the API
        shows is checked for it.
      - V(always) runs them in every agent pod and fails the C(agent_exec) check of each node where they fail.
      - V(never) checks only what the API shows.
    type: str
    choices: [auto, always, never]
    default: auto
  exec_timeout:
    description:
      - Seconds to wait for each agent command to finish.
    type: int
    default: 30
  cilium_version:
    description:
      - Cilium version of the agents, such as V(1.14.9), which selects the agent CLI. The CLI is C(cilium)
        before 1.15 and C(cilium-dbg) from 1.15 on.
      - V(auto) reads the version from the tag of each agent image. When the tag contains no version, the module
        runs C(cilium-dbg) and falls back to C(cilium) if the container has no C(cilium-dbg).
    type: str
    default: auto
  ipsec_secret_name:
    description:
      - Name of the IPsec key Secret, the Helm value C(encryption.ipsec.secretName).
    type: str
    default: cilium-ipsec-keys
  ipsec_secret_data_key:
    description:
      - Data key in the Secret that contains the key line.
      - When unset, the file name of C(ipsec-key-file) in C(cilium-config) is used, and V(keys) without it.
    type: str
  fail_on_error:
    description:
      - Fail the task when a check fails. The result is returned in either case.
    type: bool
    default: false
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - kubernetes.core.k8s_auth_options
attributes:
  check_mode:
    support: full
    details:
      - The module only reads, so it does the same in check mode, including the agent commands, which are
        read-only.
  diff_mode:
    support: none
  idempotent:
    description: Whether a second run with the same options reports no change.
    support: full
  platform:
    platforms: posix
    details:
      - The module runs where the task is delegated, usually the controller, and talks to the Kubernetes API from there.
notes:
  - On the local test control plane of this collection every node is a kwok node. No agent runs there and
    exec into a pod on such a node cannot succeed, so the agent checks never run there and only the API checks
    are tested.
  - What the agent output allows to check is limited. C(cilium-dbg status) and C(cilium-dbg encrypt status)
    give a node's own WireGuard public key and its peer count, not the peers' keys. The module therefore
    compares each agent's key with its own CiliumNode annotation and counts peers, but does not check that each
    peer key equals the remote node's annotation, nor the peers' allowed IPs. Use
    C(cilium-dbg debuginfo --output json) or C(wg show cilium_wg0) on the node for that.
  - The module does not check the number of IPsec keys in use against an expected count, because that count
    depends on the Cilium version, the routing mode and the IP families. It reports the count per node, and
    sets RV(ipsec_rotation_in_progress) when the CiliumNodes report two SPIs or the agents report different
    counts.
  - The XFRM error counters count since the node booted, so a non-zero C(Errors) value fails the C(xfrm_errors)
    check even when the errors are old. Compare two runs to see whether the counters grow.
  - The checks prove what the API and the agents report. They do not prove that packets are encrypted on the
    wire.
  - The credentials need get on ConfigMaps and Secrets and list on Pods in O(namespace), list on Nodes and
    CiliumNodes, and create on pods/exec when agent commands run.
seealso:
  - module: kubecrypt.pod_encryption.cilium_ipsec_key
  - name: Cilium IPsec transparent encryption
    description: Verification and troubleshooting of IPsec.
    link: https://docs.cilium.io/en/stable/security/network/encryption-ipsec/
  - name: Cilium WireGuard transparent encryption
    description: Verification and troubleshooting of WireGuard.
    link: https://docs.cilium.io/en/stable/security/network/encryption-wireguard/
requirements:
  - kubernetes >= 24.2.0
"""

EXAMPLES = r"""
- name: Check that Cilium encrypts pod traffic with IPsec
  kubecrypt.pod_encryption.encryption_info:
    expected_type: ipsec
  register: cilium_posture

- name: Print one line per node
  ansible.builtin.debug:
    msg: "{{ cilium_posture.summary }}"

- name: Fail the play when WireGuard is not on everywhere
  kubecrypt.pod_encryption.encryption_info:
    expected_type: wireguard
    fail_on_error: true

- name: Check only what the API shows, without exec into the agents
  kubecrypt.pod_encryption.encryption_info:
    exec_agents: never

- name: Check a Cilium 1.14 installation in its own namespace
  kubecrypt.pod_encryption.encryption_info:
    namespace: cilium
    cilium_version: "1.14.9"
"""

RETURN = r"""
mode:
  description:
    - Encryption mode that C(cilium-config) turns on, one of V(ipsec), V(wireguard), V(ztunnel) or V(disabled).
    - V(conflict) means both IPsec and WireGuard are on. None means C(cilium-config) was not found.
  returned: always
  type: str
  sample: ipsec
expected_type:
  description: The value of O(expected_type).
  returned: always
  type: str
  sample: ipsec
config:
  description: The encryption keys of C(cilium-config) and their values as stored, None without the ConfigMap.
  returned: always
  type: dict
  sample:
    enable-ipsec: "true"
    ipsec-key-file: /etc/ipsec/keys
    enable-ipsec-key-watcher: "true"
    ipsec-key-rotation-duration: 5m0s
ipsec_key:
  description:
    - Metadata of the IPsec key Secret, never the key. None unless the checks test for IPsec.
  returned: always
  type: dict
  contains:
    name:
      description: Name of the Secret.
      type: str
      sample: cilium-ipsec-keys
    namespace:
      description: Namespace of the Secret.
      type: str
      sample: kube-system
    data_key:
      description: Data key that was read.
      type: str
      sample: keys
    found:
      description: Whether the Secret exists.
      type: bool
      sample: true
    problem:
      description: Why the key is unusable, or None.
      type: str
      sample: null
    spi:
      description: SPI of the key. It is also read from an invalid key line whose first field is a valid SPI.
      type: int
      sample: 4
    per_tunnel:
      description: Whether the SPI carries C(+), which selects per-tunnel keys.
      type: bool
      sample: true
    algorithm:
      description: AEAD algorithm of the key.
      type: str
      sample: rfc4106(gcm(aes))
    key_bits:
      description: AES key size in bits.
      type: int
      sample: 128
    icv_bits:
      description: Integrity check value length in bits.
      type: int
      sample: 128
    fingerprint:
      description: Shortened SHA-256 of the key material, to compare keys without revealing them.
      type: str
      sample: SHA256:5f0c8e1d2a3b4c6d
  sample:
    name: cilium-ipsec-keys
    namespace: kube-system
    data_key: keys
    found: true
    problem: null
    spi: 4
    per_tunnel: true
    algorithm: rfc4106(gcm(aes))
    key_bits: 128
    icv_bits: 128
    fingerprint: SHA256:5f0c8e1d2a3b4c6d
ipsec_rotation_in_progress:
  description:
    - Whether an IPsec key rotation looks unfinished, because the CiliumNodes report more than one SPI or the
      exec'd agents report different numbers of keys in use.
  returned: always
  type: bool
  sample: false
nodes:
  description: One entry per Node of the cluster, sorted by name.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Name of the Node.
      type: str
      sample: worker-1
    ciliumnode:
      description: Whether a CiliumNode with the Node's name exists.
      type: bool
      sample: true
    spi:
      description: IPsec SPI in the CiliumNode's C(spec.encryption.key), or None.
      type: int
      sample: 4
    wireguard_public_key:
      description: WireGuard public key in the CiliumNode's annotation C(network.cilium.io/wg-pub-key), or None.
      type: str
      sample: HMfZu016CF/0EYMl0tACI3qeaT2TePs831EfJZmzdQw=
    agent_pod:
      description: Name of the agent pod on the node, or None.
      type: str
      sample: cilium-7xk2p
    cilium_version:
      description: Cilium version from the agent image tag, or None.
      type: str
      sample: 1.16.5
    exec_status:
      description: V(exec'd), or C(not exec'd) followed by the reason.
      type: str
      sample: "not exec'd: kwok simulates this node, so no agent process runs there"
    status:
      description:
        - The parsed C(Encryption) line of C(cilium-dbg status), None when not exec'd. It contains C(mode),
          C(node_encryption), C(interfaces) and C(message).
      type: dict
      sample:
        mode: wireguard
        node_encryption: Disabled
        interfaces:
          - name: cilium_wg0
            public_key: HMfZu016CF/0EYMl0tACI3qeaT2TePs831EfJZmzdQw=
            port: 51871
            peers: 2
        message: null
    encrypt_status:
      description:
        - The parsed output of C(cilium-dbg encrypt status), None when not exec'd. It contains C(mode), C(message),
          C(ipsec) and C(wireguard).
        - C(ipsec) contains C(decryption_interfaces), C(keys_in_use), C(max_seq_number), C(max_seq_used),
          C(max_seq_limit), C(errors) and C(xfrm_errors).
      type: dict
      sample:
        mode: ipsec
        message: null
        ipsec:
          decryption_interfaces: [eth0]
          keys_in_use: 4
          max_seq_number: 0x1e3/0xffffffff
          max_seq_used: 483
          max_seq_limit: 4294967295
          errors: 0
          xfrm_errors: {}
        wireguard: []
    checks:
      description: The checks of this node, in the form of RV(checks).
      type: list
      elements: dict
      sample:
        - name: ipsec_spi
          node: worker-2
          passed: false
          message: The node uses SPI 3, but the key in the Secret has SPI 4.
ignored_ciliumnodes:
  description: Names of CiliumNodes that match no Node and were not checked.
  returned: always
  type: list
  elements: str
  sample: [worker-9]
checks:
  description:
    - Every check, cluster checks first. The cluster checks are C(cilium_config), C(encryption_mode),
      C(ciliumnode_api), C(ipsec_key), C(ipsec_spi_consistent) and C(wireguard_keys_unique).
    - The node checks are C(ciliumnode), C(agent_running), C(ipsec_spi), C(wireguard_public_key), and from the
      agent output C(agent_exec), C(agent_output), C(agent_mode), C(xfrm_errors), C(decryption_interfaces),
      C(ipsec_sequence_number), C(wireguard_peers), C(wireguard_agent_key) and C(wireguard_node_encryption).
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Name of the check.
      type: str
      sample: ipsec_spi_consistent
    node:
      description: Node the check is about, None for a cluster check.
      type: str
      sample: null
    passed:
      description: Whether the check passed.
      type: bool
      sample: false
    message:
      description: What was found, and for a failure what to do.
      type: str
      sample: "1 of 3 CiliumNodes use another SPI than the Secret's SPI 4: worker-2 (SPI 3)."
  sample:
    - name: cilium_config
      node: null
      passed: true
      message: ConfigMap kube-system/cilium-config found.
failed_checks:
  description: The checks of RV(checks) that failed.
  returned: always
  type: list
  elements: dict
  sample:
    - name: ipsec_spi
      node: worker-2
      passed: false
      message: The node uses SPI 3, but the key in the Secret has SPI 4.
ok:
  description: Whether every check passed.
  returned: always
  type: bool
  sample: false
summary:
  description: One line for the cluster, then one line per node, for a role to print.
  returned: always
  type: list
  elements: str
  sample:
    - "cluster: cilium-config mode ipsec (expected ipsec), Secret kube-system/cilium-ipsec-keys SPI 4,
      1 of 4 checks failed: ipsec_spi_consistent"
    - "worker-2: SPI 3, exec'd, 1 of 6 checks failed: ipsec_spi"
"""

from ansible_collections.kubecrypt.pod_encryption.plugins.module_utils._cilium_dbg import (
    cli_for_version,
    parse_version,
)
from ansible_collections.kubecrypt.pod_encryption.plugins.module_utils._k8s_compat import (
    ApiError,
    ObjectStore,
    auth_argument_spec,
    connect,
    exec_in_pod,
    new_module,
)
from ansible_collections.kubecrypt.pod_encryption.plugins.module_utils._posture import (
    AGENT_CONTAINER,
    AGENT_LABEL_SELECTOR,
    CONFIGMAP_NAME,
    DEFAULT_SECRET_NAME,
    EXEC_CHOICES,
    EXPECTED_TYPES,
    agent_pods_by_node,
    agent_version,
    checked_type,
    describe_ipsec_secret,
    encryption_mode,
    evaluate,
    exec_skip_reason,
    read_config,
    secret_data_key,
)

# Exit codes a shell or container runtime returns for a command it cannot find or run.
MISSING_COMMAND_CODES = (126, 127)
MAX_ERROR_TEXT = 300


class AgentCommandError(ApiError):
    """An agent command that exited with an error and printed nothing on stdout."""

    def __init__(self, message, returncode):
        super(AgentCommandError, self).__init__(message)
        self.returncode = returncode


def argument_spec():
    spec = auth_argument_spec()
    spec.update(
        expected_type=dict(type="str", choices=list(EXPECTED_TYPES)),
        namespace=dict(type="str", default="kube-system"),
        exec_agents=dict(type="str", choices=list(EXEC_CHOICES), default="auto"),
        exec_timeout=dict(type="int", default=30),
        cilium_version=dict(type="str", default="auto"),
        ipsec_secret_name=dict(type="str", default=DEFAULT_SECRET_NAME),
        ipsec_secret_data_key=dict(type="str", no_log=False),
        fail_on_error=dict(type="bool", default=False),
    )
    return spec


def main():
    module = new_module(argument_spec=argument_spec(), supports_check_mode=True)
    params = module.params
    version = requested_version(module, params["cilium_version"])
    if params["exec_timeout"] < 1:
        module.fail_json(
            msg="exec_timeout {0} is invalid: give a number of seconds of 1 or more.".format(
                params["exec_timeout"]
            )
        )

    try:
        client = connect(module)
        snapshot = read_cluster(module, client, params, version)
    except ApiError as exc:
        module.fail_json(msg=str(exc))

    result = evaluate(snapshot, params["expected_type"], params["exec_agents"])
    warn_about_exec(module, snapshot, params["exec_agents"])
    if params["fail_on_error"] and not result["ok"]:
        module.fail_json(msg=failure_message(result), changed=False, **result)
    module.exit_json(changed=False, **result)


def requested_version(module, text):
    """Return the version tuple of the cilium_version option, None for auto."""
    if text == "auto":
        return None
    version = parse_version(text)
    if version is None:
        module.fail_json(
            msg="cilium_version {0!r} is not a version: write auto or a version such as "
            "1.14.9.".format(text)
        )
    return version


def read_cluster(module, client, params, version):
    """Read the objects and agent output that evaluate() needs."""
    namespace = params["namespace"]
    config = read_config(
        ObjectStore(client, "ConfigMap", "v1").get(CONFIGMAP_NAME, namespace)
    )
    checked_mode = checked_type(encryption_mode(config), params["expected_type"])
    snapshot = {"namespace": namespace, "config": config, "secret": None, "agents": {}}

    if checked_mode == "ipsec":
        name = params["ipsec_secret_name"]
        data_key = secret_data_key(config, params["ipsec_secret_data_key"])
        secret = ObjectStore(client, "Secret", "v1").get(name, namespace)
        summary, masked = describe_ipsec_secret(secret, name, namespace, data_key)
        # Ansible masks these strings in everything it prints, a second barrier behind the
        # rule that no result field carries key material.
        module._module.no_log_values.update(masked)
        snapshot["secret"] = summary

    snapshot["nodes"] = ObjectStore(client, "Node", "v1").list()
    try:
        snapshot["ciliumnodes"] = ObjectStore(
            client, "CiliumNode", "cilium.io/v2"
        ).list()
    except ApiError as exc:
        if exc.status != 404:
            raise
        snapshot["ciliumnodes"] = None

    pods = ObjectStore(client, "Pod", "v1").list(
        namespace=namespace, label_selector=AGENT_LABEL_SELECTOR
    )
    by_node = agent_pods_by_node(pods)
    for node in snapshot["nodes"]:
        node_name = node["metadata"]["name"]
        pod = by_node.get(node_name)
        agent = {"pod": pod, "skip_reason": None, "exec_error": None}
        agent["skip_reason"] = exec_skip_reason(node, pod, params["exec_agents"])
        if agent["skip_reason"] is None:
            agent.update(
                read_agent(client, namespace, pod, version, params["exec_timeout"])
            )
        snapshot["agents"][node_name] = agent
    return snapshot


def read_agent(client, namespace, pod, version, timeout):
    """Run the two agent commands and return their output, or the error that stopped them."""
    pod_name = pod["metadata"]["name"]
    version = version or agent_version(pod)
    cli = cli_for_version(version)
    try:
        try:
            status = run_agent_command(
                client, namespace, pod_name, [cli, "status"], timeout
            )
        except ApiError as exc:
            if version is not None or not is_missing_command(exc):
                raise
            # The image tag gave no version: an agent before 1.15 has only the old CLI name.
            cli = "cilium"
            status = run_agent_command(
                client, namespace, pod_name, [cli, "status"], timeout
            )
        encrypt_status = run_agent_command(
            client, namespace, pod_name, [cli, "encrypt", "status"], timeout
        )
    except ApiError as exc:
        return {"exec_error": str(exc)}
    return {"status": status, "encrypt_status": encrypt_status}


def run_agent_command(client, namespace, pod_name, command, timeout):
    """Return what the command printed.

    A non-zero exit code raises AgentCommandError only when the command printed nothing on
    stdout, because cilium-dbg status exits with 1 when the agent is unhealthy and still
    prints the status.
    """
    outcome = exec_in_pod(
        client, namespace, pod_name, AGENT_CONTAINER, command, timeout
    )
    if outcome.returncode != 0 and not outcome.stdout.strip():
        raise AgentCommandError(
            "'{0}' in pod {1}/{2} exited with code {3}: {4}".format(
                " ".join(command),
                namespace,
                pod_name,
                outcome.returncode,
                outcome.stderr.strip()[:MAX_ERROR_TEXT] or "no output",
            ),
            outcome.returncode,
        )
    return outcome.stdout


def is_missing_command(exc):
    return getattr(
        exc, "returncode", None
    ) in MISSING_COMMAND_CODES or "executable file not found" in str(exc)


def warn_about_exec(module, snapshot, exec_agents):
    """Warn once when agent commands failed in auto mode, where no check fails for them."""
    if exec_agents != "auto":
        return
    failed = sorted(
        name for name, agent in snapshot["agents"].items() if agent.get("exec_error")
    )
    if failed:
        module.warn(
            "The agent commands failed on {0} node(s): {1}. Only what the API shows was "
            "checked there, and the exec_status of each node gives its error.".format(
                len(failed), ", ".join(failed)
            )
        )


def failure_message(result):
    failed = result["failed_checks"]
    details = "; ".join(
        "{0}{1}: {2}".format(
            check["name"],
            " on " + check["node"] if check["node"] else "",
            check["message"],
        )
        for check in failed
    )
    return "{0} encryption check(s) failed. {1}".format(len(failed), details)


if __name__ == "__main__":
    main()
