# -*- coding: utf-8 -*-
# Copyright: virtops.kubevirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):
    """Waiting: one watch from the write's resourceVersion, a timeout, and a progress record."""

    DOCUMENTATION = r"""
options:
  wait:
    description:
      - Wait until the object reaches the state the task asked for.
      - The wait is a watch (no polling) that starts from the write's resourceVersion.
      - When it times out the task fails with what it waited for, the last phase and conditions seen,
        the latest warning events and the elapsed time.
    type: bool
    default: false
  wait_for:
    description:
      - What a running VM or VMI must reach, all of them. Default V([ready]).
      - V(ready) the VMI is Running with condition Ready=True.
      - V(ip) the first network of the VMI (normally the pod network) has an IP address.
      - V(ip:NAME) the network NAME has an IP address, for example V(ip:br1). NAME must be a network of the VM
        (checked before anything is written).
      - V(agent) the guest agent is connected.
      - Ignored for stopped VMs (C(run_strategy=Halted)) and deletions, which wait until the objects are gone.
    type: list
    elements: str
  wait_timeout:
    description:
      - How many seconds to wait at most; a positive number (0 or less is refused before anything is written).
    type: int
    default: 300
"""
