"""Make the collection importable as ansible_collections.kubecrypt.pod_encryption."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import paths  # noqa: E402,F401  (links the collection and extends sys.path on import)

# The test session starts and wipes its own control plane, apart from the demo's.
os.environ.setdefault("KUBECRYPT_CLUSTER_DIR", os.path.join(paths.CACHE_ROOT, "cluster-tests"))
