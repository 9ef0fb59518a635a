# Copyright (c) virtops.kubevirt developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ssh's ProxyCommand for a VM without a route to it: a stdio port-forward through KubeVirt.

The inventory plugin puts ``-o ProxyCommand='PYTHON .../plugin_utils/ssh_proxy.py ... vm/NAME/NS %p'``
into a host's ``ansible_ssh_common_args``; by hand::

    ssh -o ProxyCommand="python3 $COLLECTION/plugins/plugin_utils/ssh_proxy.py vm/web1/demo %p" fedora@vm.web1.demo

Run as a script, this file makes the collection importable from where it is installed
(``<dir>/ansible_collections/virtops/kubevirt/plugins/plugin_utils/``) and runs
``module_utils/kubevirt/portforward.py``'s ``main()``; see there for the options. Imported, it
only gives ``script_path()``.
"""

from __future__ import annotations

import os
import sys

COLLECTION_PARTS = ("ansible_collections", "virtops", "kubevirt")


def script_path():
    """This file's path, as the ProxyCommand names it (inside ansible_collections/, symlinks kept)."""
    path = os.path.abspath(__file__)
    return path[:-1] if path.endswith(".pyc") else path


def collections_root(path):
    """The folder that holds ansible_collections/virtops/kubevirt for this file, or None."""
    plugins = os.path.dirname(os.path.dirname(path))        # .../kubevirt/plugins
    collection = os.path.dirname(plugins)                   # .../ansible_collections/virtops/kubevirt
    parts, root = [], collection
    for dummy in COLLECTION_PARTS:
        parts.insert(0, os.path.basename(root))
        root = os.path.dirname(root)
    return root if tuple(parts) == COLLECTION_PARTS else None


def _run():
    root = collections_root(os.path.abspath(sys.argv[0]))
    if root is None:
        sys.stderr.write("ssh_proxy.py must run from an installed collection (a path ending in "
                         "ansible_collections/virtops/kubevirt/plugins/plugin_utils/ssh_proxy.py), not %s.\n"
                         % os.path.abspath(sys.argv[0]))
        return 1
    sys.path[0] = root   # instead of this file's folder, whose module names are not top-level modules
    try:
        from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt.portforward import main
    except ImportError as exc:
        sys.stderr.write("ssh_proxy.py could not load virtops.kubevirt from %s: %s; the Python running it (%s) "
                         "needs websocket-client and PyYAML.\n" % (root, exc, sys.executable))
        return 1
    return main()


if __name__ == "__main__":
    sys.exit(_run())
