# -*- coding: utf-8 -*-
# Copyright: virtops.kubevirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""KubeVirt's rules about a VM and its VMI, each defined once: conditions, phases, readiness.

Pure functions of the objects as the API returns them; no I/O.
"""

from __future__ import annotations


def _meta(obj):
    return (obj or {}).get("metadata") or {}


def _status(obj):
    return (obj or {}).get("status") or {}


# -- conditions ----------------------------------------------------------------------------------
def conditions(obj):
    return [c for c in _status(obj).get("conditions") or [] if isinstance(c, dict)]


def condition(obj, ctype):
    for cond in conditions(obj):
        if cond.get("type") == ctype:
            return cond
    return None


def condition_true(obj, ctype):
    cond = condition(obj, ctype)
    return bool(cond) and str(cond.get("status")) == "True"


# -- the VMI -------------------------------------------------------------------------------------
def vmi_ready(vmi):
    return _status(vmi).get("phase") == "Running" and condition_true(vmi, "Ready")


def agent_connected(vmi):
    return condition_true(vmi, "AgentConnected")
