# -*- coding: utf-8 -*-
# Copyright: virtops.kubevirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The guest_info module: what the guest agent reports (OS, users, filesystems) of a running VMI,
optionally after waiting for the agent to connect. The agent calls are in kubevirt/guest.py.
"""

from __future__ import annotations

from ansible_collections.virtops.kubevirt.plugins.module_utils import runner
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.errors import InputError
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt import guest


class GuestInfoRunner(runner.Runner):

    @classmethod
    def before_connect(cls, module):
        cls.check_target(module.params)
        if not module.params.get("gather"):
            raise InputError("gather is empty: give at least one of os, users, filesystems.")

    def run(self):
        params = self.params
        name = params["name"]
        namespace = params.get("namespace") or self.client.namespace
        parts = [p for p in guest.GATHER_CHOICES if p in (params.get("gather") or guest.GATHER_CHOICES)]
        if params.get("wait"):
            guest.wait_for_agent(self.client, namespace, name, params["wait_timeout"], self.progress)
        vmi = guest.running_vmi(self.client, namespace, name)
        message = guest.agent_message(vmi)
        if message:
            raise guest.AgentNotConnected(message[0].upper() + message[1:])
        data, raw = guest.gather(self.client, namespace, name, parts)
        return dict(changed=False, progress=self.progress, guest=data, raw=raw, vmi=guest.vmi_brief(vmi)), None
