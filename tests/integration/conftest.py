"""Fixtures that start the local control plane for the integration tests."""

import json
import os
import subprocess

import pytest

import harness


@pytest.fixture(scope="session")
def kubeconfig():
    """Start a fresh local control plane for the session and stop it afterwards.

    With KUBECRYPT_REUSE_CLUSTER=1 a running control plane is reused and left running, which
    keeps the edit-and-rerun loop short; its state then carries over between sessions.
    """
    reuse = os.environ.get("KUBECRYPT_REUSE_CLUSTER") == "1"
    if not reuse:
        subprocess.run(
            [os.sys.executable, harness.CLUSTER_SCRIPT, "stop"], check=True
        )
        harness.reset_state()
    path = harness.start_cluster()
    yield path
    if not reuse:
        harness.stop_cluster()


@pytest.fixture(scope="session")
def kubectl(kubeconfig):
    """Run kubectl against the local control plane and return its parsed JSON output."""

    def run(*arguments, check=True, stdin=None):
        process = subprocess.run(
            ["kubectl", "--kubeconfig", kubeconfig] + list(arguments),
            input=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        if check and process.returncode != 0:
            raise AssertionError(
                "kubectl {0} failed: {1}".format(" ".join(arguments), process.stderr)
            )
        if "-o" in arguments and "json" in arguments and process.returncode == 0:
            return json.loads(process.stdout)
        return process

    return run
