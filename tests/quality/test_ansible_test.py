"""ansible-test sanity and units, run the way certification pipelines run them.

ansible-test needs the collection at ansible_collections/kubecrypt/pod_encryption and its
dependencies next to it, so each test stages the repository's files, and the kubernetes.core
that the ansible package bundles, in a temporary collections tree.

ansible-test downloads its pip bootstrap script from a host outside the package indexes this
network can reach. tests/sanity/pip_bootstrap.py does the same job from PyPI and is placed in
ansible-test's cache under the name ansible-test looks for. A real bootstrap script that is
already cached is left alone.
"""

import glob
import os
import re
import shutil
import subprocess
import sys

import pytest

from harness import REPO_ROOT

BOOTSTRAP_SOURCE = os.path.join(REPO_ROOT, "tests", "sanity", "pip_bootstrap.py")
BOOTSTRAP_MARKER = "Stand-in for the pip bootstrap script that ansible-test downloads."
CACHE_DIR = os.path.expanduser("~/.ansible/test/cache")
# ansible-test 2.19 bootstraps pip 24.2 in its virtual environments.
DEFAULT_PIP_VERSION = "24.2"
PYTHON_VERSION = "{0}.{1}".format(*sys.version_info[:2])
ANSIBLE_TEST_TIMEOUT = 2400

needs_ansible_test = pytest.mark.skipif(
    shutil.which("ansible-test") is None,
    reason="ansible-test is not installed; it comes with ansible-core",
)


def pip_version():
    """Return the pip version that ansible-test bootstraps, from its own table when readable."""
    try:
        from types import SimpleNamespace

        from ansible_test._internal.python_requirements import get_venv_packages

        return get_venv_packages(SimpleNamespace(version=PYTHON_VERSION))["pip"]
    except (ImportError, KeyError, AttributeError, TypeError):
        return DEFAULT_PIP_VERSION


def install_pip_bootstrap():
    """Copy the stand-in bootstrap script into ansible-test's cache, keeping a real one."""
    target = os.path.join(CACHE_DIR, "get_pip_{0}.py".format(pip_version().replace(".", "_")))
    if os.path.exists(target):
        with open(target) as handle:
            if BOOTSTRAP_MARKER not in handle.read():
                return target
    os.makedirs(CACHE_DIR, exist_ok=True)
    shutil.copyfile(BOOTSTRAP_SOURCE, target)
    return target


def repository_files():
    """List the files that a clone of the repository has, plus new files not yet committed."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        check=True,
    )
    names = [name for name in listed.stdout.decode().split("\0") if name]
    return sorted(name for name in names if os.path.isfile(os.path.join(REPO_ROOT, name)))


def bundled_collection_dir(namespace, name):
    """Return the directory of a collection that the ansible package installed."""
    module = __import__("ansible_collections.{0}.{1}".format(namespace, name), fromlist=["_"])
    return list(module.__path__)[0]


@pytest.fixture(scope="module")
def staged_collection(tmp_path_factory):
    """Return the collection's directory inside a fresh ansible_collections tree."""
    root = tmp_path_factory.mktemp("ansible-test") / "ansible_collections"
    collection = root / "kubecrypt" / "pod_encryption"
    for name in repository_files():
        destination = collection / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(os.path.join(REPO_ROOT, name), str(destination))
    shutil.copytree(
        bundled_collection_dir("kubernetes", "core"),
        str(root / "kubernetes" / "core"),
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    install_pip_bootstrap()
    return collection


def extra_interpreter_dirs():
    """Return the bin directories of the CPython 3 versions that pyenv installed, if any.

    ansible-test runs the compile and import tests on every supported python3.X it finds on
    PATH, and pyenv puts only its global version there.
    """
    root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    return sorted(
        os.path.dirname(path)
        for path in glob.glob(os.path.join(root, "versions", "3.*", "bin", "python3.*"))
        if re.search(r"python3\.\d+$", path)
    )


def run_ansible_test(collection, arguments, extra_path=()):
    """Run ansible-test in the staged collection and return (returncode, output)."""
    env = dict(os.environ)
    env.update({"ANSIBLE_FORCE_COLOR": "0", "NO_COLOR": "1"})
    env["PATH"] = os.pathsep.join(list(extra_path) + [env.get("PATH", "")])
    process = subprocess.run(
        ["ansible-test"] + list(arguments) + ["--color", "no"],
        cwd=str(collection),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=ANSIBLE_TEST_TIMEOUT,
        check=False,
    )
    return process.returncode, process.stdout


def ignore_entries(collection):
    """Return the (path, test) pairs of every sanity ignore file in the collection."""
    entries = []
    sanity_dir = collection / "tests" / "sanity"
    for path in sorted(sanity_dir.glob("ignore-*.txt")):
        for line in path.read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                target, test = line.split(None, 1)
                entries.append((target, test.split(":", 1)[0]))
    return entries


@needs_ansible_test
def test_ansible_test_sanity_passes(staged_collection):
    # Certification accepts a short list of ignore entries. This collection needs none.
    assert ignore_entries(staged_collection) == []
    returncode, output = run_ansible_test(staged_collection, ["sanity"], extra_interpreter_dirs())
    assert returncode == 0, output[-6000:]
    assert 'Running sanity test "import" on Python {0}'.format(PYTHON_VERSION) in output
    assert re.search(r'Running sanity test "validate-modules"', output), output[-3000:]
    assert re.search(r'Running sanity test "pylint"', output), output[-3000:]
    assert "ERROR:" not in output, output[-6000:]
    # ansible-test skips a test whose program is missing, shellcheck for example, with a warning.
    assert "Required program" not in output, output[-6000:]


@needs_ansible_test
def test_ansible_test_units_passes(staged_collection):
    returncode, output = run_ansible_test(
        staged_collection, ["units", "--venv", "--python", PYTHON_VERSION]
    )
    assert returncode == 0, output[-6000:]
    summary = re.findall(r"=+ (\d+) passed", output)
    assert summary, output[-3000:]
    assert int(summary[-1]) > 0, output[-3000:]
