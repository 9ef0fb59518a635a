"""Make the collection importable as ansible_collections.virtops.kubevirt for plain pytest runs.

Under `ansible-test units` the collection is already on the path and this does nothing.
"""
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _ensure_collection_path():
    try:
        import ansible_collections.virtops.kubevirt.plugins  # noqa: F401
        return
    except ImportError:
        pass
    root = os.path.join(REPO, ".cache", "collections")
    link = os.path.join(root, "ansible_collections", "virtops", "kubevirt")
    if not os.path.exists(link):
        os.makedirs(os.path.dirname(link), exist_ok=True)
        os.symlink(REPO, link)
    sys.path.insert(0, root)
    for name in [m for m in sys.modules if m == "ansible_collections" or m.startswith("ansible_collections.")]:
        del sys.modules[name]
    # Ansible's collection finder, as ansible-test units installs it: then ansible-core's plugin loader
    # can load our plugins (with their option definitions) in the same module namespace as the tests.
    from ansible.utils.collection_loader._collection_finder import _AnsibleCollectionFinder

    _AnsibleCollectionFinder(paths=[root], scan_sys_paths=False)._install()


_ensure_collection_path()
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "plugins"))
