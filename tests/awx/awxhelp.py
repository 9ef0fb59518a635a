"""Paths shared by the tests/awx modules."""
import os

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COLLECTIONS = os.path.join(REPO, ".cache", "collections")


def collection_path():
    """The checkout as ansible_collections/virtops/kubevirt (what the EE has installed)."""
    link = os.path.join(COLLECTIONS, "ansible_collections", "virtops", "kubevirt")
    if not os.path.exists(link):
        os.makedirs(os.path.dirname(link), exist_ok=True)
        os.symlink(REPO, link)
    return COLLECTIONS
