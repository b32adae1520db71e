"""The Molecule scenarios under extensions/molecule.

The local scenario runs for real: molecule starts its own control plane in a fresh ephemeral
directory, converges playbooks/site.yml, converges again for the idempotence step, verifies
and destroys. The default scenario needs Docker, kind and internet access, so here it is only
syntax-checked.
"""

import glob
import importlib.util
import os
import re
import subprocess

import pytest

from harness import REPO_ROOT, ansible_env


SCENARIOS_DIR = os.path.join(REPO_ROOT, "extensions", "molecule")
DEFAULT_PLAYBOOKS = sorted(
    path
    for path in glob.glob(os.path.join(SCENARIOS_DIR, "default", "*.yml"))
    if os.path.basename(path) != "molecule.yml"
)
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")
MOLECULE_TIMEOUT = 1500

needs_molecule = pytest.mark.skipif(
    importlib.util.find_spec("molecule") is None,
    reason="molecule is not installed; install it with pip install 'molecule>=26'",
)


def run_molecule(*arguments, ephemeral_dir=None):
    """Run molecule from the collection root and return (returncode, output without colour)."""
    env = dict(os.environ)
    env.update({"NO_COLOR": "1", "ANSIBLE_FORCE_COLOR": "0", "ANSIBLE_NOCOLOR": "1"})
    # MOLECULE_GLOB would override the discovery that this repository relies on.
    env.pop("MOLECULE_GLOB", None)
    if ephemeral_dir:
        env["MOLECULE_EPHEMERAL_DIRECTORY"] = ephemeral_dir
    process = subprocess.run(
        ["molecule"] + list(arguments),
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=MOLECULE_TIMEOUT,
        check=False,
    )
    return process.returncode, ANSI_ESCAPE.sub("", process.stdout)


@pytest.fixture(scope="module", autouse=True)
def fresh_molecule_state():
    """Clear Molecule's saved state for both scenarios before the tests run.

    Molecule keys that state by the checkout's directory name only, so a clone named like an
    earlier checkout finds the older state and warns that the scenario files changed.
    `molecule reset --all` removes it from wherever this Molecule version keeps it.
    """
    if importlib.util.find_spec("molecule") is None:
        return
    returncode, output = run_molecule("reset", "--all")
    assert returncode == 0, output[-3000:]


@needs_molecule
def test_molecule_discovers_scenarios_without_warning():
    returncode, output = run_molecule("list")
    assert returncode == 0, output[-3000:]
    assert "Scenarios will be used from 'extensions/molecule'" in output
    assert "should migrate" not in output
    assert "WARNING" not in output, output
    assert re.search(r"\bdefault\b.*\bdefault\b", output), output
    assert re.search(r"\bdefault\b.*\blocal\b", output), output


@needs_molecule
def test_molecule_local_scenario_passes(tmp_path):
    # A fresh ephemeral directory per run, so that a state file left by an interrupted run by
    # hand cannot make molecule skip create.
    ephemeral_dir = str(tmp_path / "ephemeral")
    returncode, output = run_molecule(
        "test", "-s", "local", ephemeral_dir=ephemeral_dir
    )
    assert returncode == 0, output[-6000:]
    # The DETAILS section molecule prints at the end has one line per step.
    for step in ("create", "converge", "idempotence", "verify", "destroy"):
        line = r"^local (?:>|➜) {0}: Executed: Successful$".format(step)
        assert re.search(line, output, re.MULTILINE), step
    assert "Idempotence test failed" not in output
    assert re.search(r"^local +: actions=6 .* failed=0$", output, re.MULTILINE)

    # The control plane and the simulated agent name files in the ephemeral directory on
    # their command lines, so none of them may be left once destroy has run.
    left = subprocess.run(
        ["pgrep", "-f", ephemeral_dir], stdout=subprocess.PIPE, text=True, check=False
    ).stdout.split()
    assert left == []
    assert not os.path.exists(os.path.join(ephemeral_dir, "cluster"))
    assert not os.path.exists(os.path.join(ephemeral_dir, "simulated_agent.pid"))


@pytest.mark.parametrize("playbook", DEFAULT_PLAYBOOKS, ids=os.path.basename)
def test_default_scenario_syntax(playbook):
    process = subprocess.run(
        ["ansible-playbook", "-i", "localhost,", "--syntax-check", playbook],
        cwd=REPO_ROOT,
        env=ansible_env(None),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        timeout=120,
        check=False,
    )
    assert process.returncode == 0, process.stderr


def test_default_scenario_has_every_playbook():
    names = [os.path.basename(path) for path in DEFAULT_PLAYBOOKS]
    assert names == ["converge.yml", "create.yml", "destroy.yml", "verify.yml"]
