#!/usr/bin/env bash
# Run the test suite: unit tests, then integration tests on a local control plane that the
# pytest fixture starts from the binaries build.sh makes (cached under ~/.cache/kubecrypt).
# Arguments are passed to pytest, e.g. tests/run.sh tests/unit -k spi
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m pip install --quiet --disable-pip-version-check -r tests/requirements.txt
bash tests/cluster/build.sh > /dev/null

python3 -m pytest "$@"
