"""Run the local control plane and ansible-playbook for the integration tests and the demo."""

import base64
import json
import os
import re
import subprocess
import sys

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(TESTS_DIR)
sys.path.insert(0, TESTS_DIR)

import paths  # noqa: E402  (links the collection into the collections directory)

CLUSTER_SCRIPT = os.path.join(TESTS_DIR, "cluster", "localcluster.py")
STANDIN_VARS = os.path.join(TESTS_DIR, "integration", "vars", "standin_charts.yml")
CILIUMNODE_CRD = os.path.join(TESTS_DIR, "fixtures", "crds", "cilium", "ciliumnodes.yaml")
AGENT_SCRIPT = os.path.join(TESTS_DIR, "cluster", "simulated_agent.py")
RECAP = re.compile(
    r"^(?P<host>\S+)\s*:\s*ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)"
    r"\s+failed=(?P<failed>\d+)",
    re.MULTILINE,
)


def _cluster_env(state_dir):
    env = dict(os.environ)
    if state_dir:
        env["KUBECRYPT_CLUSTER_DIR"] = state_dir
    return env


def start_cluster(state_dir=None):
    """Start (or reuse) a local control plane and return its admin kubeconfig path."""
    output = subprocess.run(
        [sys.executable, CLUSTER_SCRIPT, "start"],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
        env=_cluster_env(state_dir),
    ).stdout
    return output.strip().splitlines()[-1]


def stop_cluster(state_dir=None):
    subprocess.run([sys.executable, CLUSTER_SCRIPT, "stop"], check=True, env=_cluster_env(state_dir))


def bin_dir():
    return os.path.join(paths.CACHE_ROOT, "bin")


def ansible_env(kubeconfig, extra=None):
    env = dict(os.environ)
    env.update(
        {
            "ANSIBLE_COLLECTIONS_PATH": os.pathsep.join(
                [paths.COLLECTIONS_DIR] + _site_collection_paths()
            ),
            "ANSIBLE_FORCE_COLOR": "0",
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_HOST_KEY_CHECKING": "False",
            "ANSIBLE_LOCALHOST_WARNING": "False",
            "ANSIBLE_INVENTORY_UNPARSED_WARNING": "False",
            "ANSIBLE_RETRY_FILES_ENABLED": "False",
            "PATH": bin_dir() + os.pathsep + env.get("PATH", ""),
        }
    )
    if kubeconfig:
        env["KUBECONFIG"] = kubeconfig
    env.update(extra or {})
    return env


def _site_collection_paths():
    from ansible_collections.kubernetes import core

    core_dir = list(core.__path__)[0]
    return [os.path.dirname(os.path.dirname(os.path.dirname(core_dir)))]


class PlaybookRun:
    """The outcome of one ansible-playbook run."""

    def __init__(self, process):
        self.returncode = process.returncode
        self.stdout = process.stdout
        self.stderr = process.stderr
        recaps = [m.groupdict() for m in RECAP.finditer(self.stdout)]
        self.recap = {r["host"]: {k: int(v) for k, v in r.items() if k != "host"} for r in recaps}

    @property
    def changed(self):
        return sum(host["changed"] for host in self.recap.values())

    @property
    def failed(self):
        return sum(host["failed"] for host in self.recap.values())

    def __repr__(self):
        return "PlaybookRun(rc={0}, recap={1})".format(self.returncode, self.recap)


def run_playbook(playbook, kubeconfig, extra_vars=None, check=False, verbosity=0, env=None,
                 var_files=(STANDIN_VARS,), diff=False, timeout=900):
    command = ["ansible-playbook", "-i", "localhost,", os.path.join(REPO_ROOT, playbook)]
    for var_file in var_files:
        command += ["-e", "@" + var_file]
    if extra_vars:
        command += ["-e", json.dumps(extra_vars)]
    if check:
        command.append("--check")
    if diff:
        command.append("--diff")
    if verbosity:
        command.append("-" + "v" * verbosity)
    process = subprocess.run(
        command,
        cwd=REPO_ROOT,
        env=ansible_env(kubeconfig, env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        timeout=timeout,
        check=False,
    )
    return PlaybookRun(process)


def run_module(module, arguments, kubeconfig, check=False, diff=False, verbosity=0, env=None):
    """Run one module with ansible's ad-hoc command and return (result dict, process)."""
    command = [
        "ansible",
        "localhost",
        "-i",
        "localhost,",
        "-c",
        "local",
        "-e",
        "ansible_python_interpreter=" + sys.executable,
        "-m",
        module,
    ]
    if arguments:
        command += ["-a", json.dumps(arguments)]
    if check:
        command.append("--check")
    if diff:
        command.append("--diff")
    if verbosity:
        command.append("-" + "v" * verbosity)
    extra = {"ANSIBLE_LOAD_CALLBACK_PLUGINS": "1", "ANSIBLE_STDOUT_CALLBACK": "json"}
    extra.update(env or {})
    process = subprocess.run(
        command,
        cwd=REPO_ROOT,
        env=ansible_env(kubeconfig, extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        timeout=300,
        check=False,
    )
    start = process.stdout.find("{")
    document = json.loads(process.stdout[start:])
    tasks = document["plays"][0]["tasks"]
    return tasks[0]["hosts"]["localhost"], process


def reset_state():
    """Delete the control plane's state directory (it must be stopped)."""
    import shutil

    state_dir = os.environ.get(
        "KUBECRYPT_CLUSTER_DIR", os.path.join(paths.CACHE_ROOT, "cluster")
    )
    shutil.rmtree(state_dir, ignore_errors=True)


def kubectl_runner(kubeconfig):
    """Return a function that runs kubectl on ``kubeconfig`` and parses JSON output."""

    def run(*arguments, check=True, stdin=None):
        process = subprocess.run(
            ["kubectl", "--kubeconfig", kubeconfig] + list(arguments),
            input=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
        if check and process.returncode != 0:
            raise AssertionError(
                "kubectl {0} failed: {1}".format(" ".join(arguments), process.stderr)
            )
        if "-o" in arguments and "json" in arguments and process.returncode == 0:
            return json.loads(process.stdout)
        return process

    return run


class SimulatedAgent:
    """Run tests/cluster/simulated_agent.py, which publishes SPIs in place of the agents."""

    def __init__(self, kubeconfig):
        self.kubeconfig = kubeconfig
        self.process = None

    def start(self, *arguments):
        self.stop()
        self.process = subprocess.Popen(
            [sys.executable, AGENT_SCRIPT, "--kubeconfig", self.kubeconfig, "--delay", "1"]
            + list(arguments),
            cwd=REPO_ROOT,
            env=ansible_env(self.kubeconfig),
        )

    def stop(self):
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=30)
            self.process = None


def assert_no_key_in_output(run, *lines):
    """Check that no form of the key material in ``lines`` reached the run's output."""
    output = run.stdout + run.stderr
    for line in lines:
        key_hex = line.split(" ")[2]
        for secret in (
            key_hex,
            key_hex.upper(),
            line,
            base64.b64encode(line.encode()).decode(),
            base64.b64encode(bytes.fromhex(key_hex)).decode(),
        ):
            assert secret not in output
