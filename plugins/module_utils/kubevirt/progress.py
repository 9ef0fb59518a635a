# -*- coding: utf-8 -*-
# Copyright: virtops.kubevirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The live progress of the waits running in this process (wait.ACTIVE), for a display elsewhere.

Run in Ansible's worker (plugin_utils/in_process.py), a module's waits are read there directly with
``lines()``. Run as a module process (ansible-core before 2.19, ``virtops_kubevirt_in_process:
false``), a module can print nothing until it ends; so when its action plugin names a file in
``PROGRESS_ENV``, ``publish()`` writes the current lines of the module's waits to that file about
once a second (replacing it, so that a reader never sees half a line), and the action plugin,
which runs in the worker, shows them live. The file holds no arguments or results, only the
waits' descriptions: object names, phases, conditions.
"""

from __future__ import annotations

import contextlib
import os
import threading

from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt import wait as waiter

PROGRESS_ENV = "VIRTOPS_KUBEVIRT_PROGRESS_FILE"
WRITE_EVERY = 1.0  # seconds; the reader decides how often a line is shown


def lines():
    """One status line per wait running now."""
    out = []
    for wait in list(waiter.ACTIVE):
        try:
            out.append(wait.status())
        except RuntimeError:  # its objects changed while being read (another thread); next time
            continue
    return out


def read(path):
    """The lines a module process published to ``path`` ([] before its first write)."""
    try:
        with open(path, encoding="utf-8") as handle:
            return [line for line in handle.read().splitlines() if line]
    except OSError:
        return []


@contextlib.contextmanager
def publish(path=None, every=WRITE_EVERY):
    """While the block runs, keep ``path`` (default: $PROGRESS_ENV; nothing without one) holding lines()."""
    path = path if path is not None else os.environ.get(PROGRESS_ENV)
    if not path:
        yield
        return
    stop = threading.Event()

    def write():
        last = None
        while not stop.wait(every):
            current = "\n".join(lines())
            if current == last:
                continue
            try:
                with open(path + ".new", "w", encoding="utf-8") as handle:
                    handle.write(current)
                os.replace(path + ".new", path)
            except OSError:
                return  # no one to show it to any more; the module goes on
            last = current

    writer = threading.Thread(target=write, name="virtops-progress-file", daemon=True)
    writer.start()
    try:
        yield
    finally:
        stop.set()
        writer.join()
