"""The AWX job playbooks under extensions/awx/playbooks on the local control plane.

The tests run in file order: the pod encryption job twice, a survey answer that names an
invalid namespace, then the verification job with matching and with wrong expectations.
"""

import json
import os

import pytest

from harness import (
    CILIUMNODE_CRD,
    REPO_ROOT,
    SimulatedAgent,
    kubectl_runner,
    run_playbook,
)

SITE_JOB = "extensions/awx/playbooks/site.yml"
VERIFY_JOB = "extensions/awx/playbooks/verify.yml"
SURVEY = {"kubecrypt_awx_namespaces": "team-a, team-b,"}


@pytest.fixture(scope="module")
def cluster(empty_cluster):
    """A control plane of its own with the CiliumNode CRD and a simulated agent."""
    kubectl = kubectl_runner(empty_cluster)
    kubectl("create", "namespace", "team-a")
    kubectl("create", "namespace", "team-b")
    kubectl("create", "namespace", "team-c")
    kubectl("apply", "-f", CILIUMNODE_CRD)
    kubectl(
        "wait",
        "--for=condition=Established",
        "crd/ciliumnodes.cilium.io",
        "--timeout=60s",
    )
    agent = SimulatedAgent(empty_cluster)
    agent.start()
    yield empty_cluster
    agent.stop()


@pytest.fixture(scope="module")
def kubectl(cluster):
    return kubectl_runner(cluster)


def injection_label(kubectl, namespace):
    labels = kubectl("get", "namespace", namespace, "-o", "json")["metadata"].get(
        "labels", {}
    )
    return labels.get("istio-injection")


def test_site_job_enrols_survey_namespaces(cluster, kubectl):
    run = run_playbook(SITE_JOB, cluster, SURVEY)
    assert run.returncode == 0, run.stdout[-3000:]
    assert run.changed > 0
    assert injection_label(kubectl, "team-a") == "enabled"
    assert injection_label(kubectl, "team-b") == "enabled"
    assert injection_label(kubectl, "team-c") is None


def test_site_job_second_run_changes_nothing(cluster):
    run = run_playbook(SITE_JOB, cluster, SURVEY)
    assert run.returncode == 0, run.stdout[-3000:]
    assert run.changed == 0, run.stdout[-3000:]


def test_site_job_rejects_invalid_namespace(cluster, kubectl):
    run = run_playbook(
        SITE_JOB, cluster, {"kubecrypt_awx_namespaces": "team-c, Team_D"}
    )
    assert run.returncode != 0
    assert "invalid namespace names: Team_D" in run.stdout
    # The check runs before site.yml, so the valid name in the same answer is not enrolled.
    assert injection_label(kubectl, "team-c") is None


def test_verify_job_passes_without_changes(cluster):
    run = run_playbook(VERIFY_JOB, cluster)
    assert run.returncode == 0, run.stdout[-3000:]
    assert run.changed == 0, run.stdout[-3000:]


def test_verify_job_fails_on_wrong_mode(cluster):
    run = run_playbook(VERIFY_JOB, cluster, {"istio_mtls_mode": "PERMISSIVE"})
    assert run.returncode != 0
    assert "mesh-wide mode STRICT (requested PERMISSIVE)" in " ".join(run.stdout.split())


def test_verify_job_fails_on_wrong_type(cluster):
    run = run_playbook(VERIFY_JOB, cluster, {"cilium_encryption_type": "wireguard"})
    assert run.returncode != 0
    assert "does not contain enable-wireguard" in run.stdout


def test_survey_variables_match_playbooks():
    # Every survey variable must be one that its job's playbook reads.
    expected = {
        "site.json": {
            "cilium_encryption_type",
            "istio_mtls_mode",
            "kubecrypt_awx_namespaces",
        },
        "rotation.json": {
            "cilium_encryption_rotate_max_age",
            "cilium_encryption_rotation_timeout",
        },
        "verification.json": {"cilium_encryption_type", "istio_mtls_mode"},
    }
    for name, variables in expected.items():
        with open(
            os.path.join(REPO_ROOT, "extensions", "awx", "surveys", name)
        ) as handle:
            survey = json.load(handle)
        assert {question["variable"] for question in survey["spec"]} == variables, name
