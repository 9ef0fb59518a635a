# -*- coding: utf-8 -*-
# Copyright: virtops.kubevirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):
    """Waiting without wait_for: one watch from the write's resourceVersion, a timeout, a progress record."""

    DOCUMENTATION = r"""
options:
  wait:
    description:
      - Wait until the object reaches the state the task asked for (the module's description says which).
      - The wait is a watch (no polling) that starts from the write's resourceVersion.
      - When it times out the task fails with what it waited for, what it last saw and the elapsed time;
        RV(progress) records every wait.
    type: bool
    default: false
  wait_timeout:
    description:
      - How many seconds to wait at most; a positive number (0 or less is refused before anything is written).
    type: int
    default: 300
"""
