"""Fixtures that start the local control plane for the integration tests."""

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


@pytest.fixture(scope="module")
def empty_cluster(tmp_path_factory):
    """Start a control plane of its own for one test module, and stop it afterwards."""
    state_dir = str(tmp_path_factory.mktemp("cluster"))
    path = harness.start_cluster(state_dir)
    yield path
    harness.stop_cluster(state_dir)


@pytest.fixture(scope="session")
def kubectl(kubeconfig):
    """Run kubectl against the session's control plane."""
    return harness.kubectl_runner(kubeconfig)
