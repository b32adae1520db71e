"""Paths shared by the tests, and the link that makes the collection importable.

Ansible finds collections by path, so the repository is linked into a collections directory
in the cache, and both Python imports and ansible-playbook runs use that directory.
"""

import hashlib
import os
import sys

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(TESTS_DIR)
CACHE_ROOT = os.environ.get(
    "KUBECRYPT_CACHE",
    os.path.join(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "kubecrypt"),
)
# One collections directory per checkout, so that two clones never load each other's code.
COLLECTIONS_DIR = os.path.join(
    CACHE_ROOT,
    "collections",
    hashlib.sha256(REPO_ROOT.encode()).hexdigest()[:12],
)


def link_collection():
    parent = os.path.join(COLLECTIONS_DIR, "ansible_collections", "kubecrypt")
    os.makedirs(parent, exist_ok=True)
    link = os.path.join(parent, "pod_encryption")
    if os.path.islink(link) and os.readlink(link) == REPO_ROOT:
        return
    if os.path.islink(link):
        os.remove(link)
    os.symlink(REPO_ROOT, link)


link_collection()
if COLLECTIONS_DIR not in sys.path:
    sys.path.insert(0, COLLECTIONS_DIR)
if TESTS_DIR not in sys.path:
    sys.path.insert(0, TESTS_DIR)
