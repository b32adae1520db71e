"""The checks that collection consumers' pipelines run: lint, docs, changelog and build."""

import glob
import os
import subprocess
import sys

import pytest

from harness import REPO_ROOT, ansible_env

PLUGIN_TYPES = {
    "module": "plugins/modules",
    "filter": "plugins/filter",
    "lookup": "plugins/lookup",
}


def run(command, **kwargs):
    return subprocess.run(
        command,
        cwd=REPO_ROOT,
        env=ansible_env(None),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=600,
        **kwargs,
        check=False,
    )


def plugin_names(plugin_type):
    """List the collection's plugins of one type as ansible-doc finds them."""
    listed = run(["ansible-doc", "-t", plugin_type, "-l", "kubecrypt.pod_encryption"])
    prefix = "kubecrypt.pod_encryption."
    return sorted(
        line.split()[0][len(prefix):]
        for line in listed.stdout.splitlines()
        if line.startswith(prefix)
    )


def test_every_plugin_is_documented():
    for plugin_type in PLUGIN_TYPES:
        listed = run(["ansible-doc", "-t", plugin_type, "-l", "kubecrypt.pod_encryption"])
        assert listed.returncode == 0, listed.stdout
        assert "UNDOCUMENTED" not in listed.stdout, listed.stdout


def test_collection_docs_lint():
    result = run(
        ["antsibull-docs", "lint-collection-docs", "--plugin-docs", "--validate-collection-refs", "all", "."]
    )
    assert result.returncode == 0, result.stdout[-4000:]


def test_ansible_lint_production_profile():
    result = run([sys.executable, "-m", "ansiblelint", "--nocolor", "--offline"])
    assert result.returncode == 0, result.stdout[-4000:]
    assert "Profile 'production' was required, and it passed." in result.stdout


def test_changelog_lint():
    result = run(["antsibull-changelog", "lint"])
    assert result.returncode == 0, result.stdout
    assert result.stdout.strip() == ""


def test_collection_builds_without_warnings(tmp_path):
    result = run(["ansible-galaxy", "collection", "build", "--output-path", str(tmp_path)])
    assert result.returncode == 0, result.stdout
    assert "WARNING" not in result.stdout.upper().replace("[WARNING]", "WARNING"), result.stdout
    assert os.path.exists(tmp_path / "kubecrypt-pod_encryption-0.1.0.tar.gz")


@pytest.mark.parametrize(
    "plugin_type, name",
    [(kind, name) for kind in PLUGIN_TYPES for name in plugin_names(kind)],
)
def test_plugin_documentation_renders(plugin_type, name):
    result = run(["ansible-doc", "-t", plugin_type, "kubecrypt.pod_encryption." + name])
    assert result.returncode == 0, result.stdout
    assert "[ERROR]" not in result.stdout
    assert "kubecrypt.pod_encryption." + name in result.stdout


@pytest.mark.parametrize("role", sorted(os.listdir(os.path.join(REPO_ROOT, "roles"))))
def test_role_documentation_renders(role):
    result = run(["ansible-doc", "-t", "role", "kubecrypt.pod_encryption." + role])
    assert result.returncode == 0, result.stdout
    assert "ENTRY POINT: *main*" in result.stdout


@pytest.mark.parametrize(
    "playbook", sorted(glob.glob(os.path.join(REPO_ROOT, "playbooks", "*.yml")))
)
def test_playbook_syntax(playbook):
    result = run(["ansible-playbook", "--syntax-check", "-i", "localhost,", playbook])
    assert result.returncode == 0, result.stdout
