"""Stand-in for the pip bootstrap script that ansible-test downloads.

ansible-test fetches get-pip-<version>.py from a host this network cannot reach, and it uses
a copy in ~/.ansible/test/cache when one exists. This script does the same job from PyPI:
it installs pip with the interpreter's bundled ensurepip, then the exact packages that
ansible-test asks for (for example pip==24.2). ansible-test runs pip without the PIP_*
environment, so the CA bundle of the host's pip configuration is copied into the virtual
environment's own pip.conf.
"""

import configparser
import ensurepip
import os
import subprocess
import sys

BOOTSTRAP_ONLY = {"--no-setuptools", "--no-wheel"}
HOST_CONFIG_FILES = ("/etc/pip.conf", os.path.expanduser("~/.config/pip/pip.conf"))


def host_ca_bundle():
    """Return the CA bundle the host's pip uses, from PIP_CERT or a pip.conf, or None."""
    if os.environ.get("PIP_CERT"):
        return os.environ["PIP_CERT"]
    for path in HOST_CONFIG_FILES:
        parser = configparser.ConfigParser()
        if parser.read(path) and parser.has_option("global", "cert"):
            return parser.get("global", "cert")
    if os.path.exists("/etc/ssl/certs/ca-certificates.crt"):
        return "/etc/ssl/certs/ca-certificates.crt"
    return None


def write_venv_config(ca_bundle):
    with open(os.path.join(sys.prefix, "pip.conf"), "w") as handle:
        handle.write("[global]\ncert = {0}\n".format(ca_bundle))


def main():
    ca_bundle = host_ca_bundle()
    if ca_bundle and sys.prefix != sys.base_prefix:
        write_venv_config(ca_bundle)
    # ensurepip deletes every PIP_* variable from os.environ and sets PIP_CONFIG_FILE to
    # os.devnull, which stops pip from reading any pip.conf, so pip below gets a saved copy.
    environment = dict(os.environ)
    if ca_bundle:
        environment["PIP_CERT"] = ca_bundle
    ensurepip.bootstrap(upgrade=True)
    arguments = [argument for argument in sys.argv[1:] if argument not in BOOTSTRAP_ONLY]
    subprocess.check_call([sys.executable, "-m", "pip", "install"] + arguments, env=environment)


if __name__ == "__main__":
    main()
