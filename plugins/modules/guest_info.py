#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: virtops.kubevirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: guest_info
short_description: Read what the guest agent of a running KubeVirt VM reports - OS, users, file systems
version_added: 0.1.0
author:
  - virtops.kubevirt developers (!UNKNOWN)
description:
  - Reads the guest agent data of a running VM (or stand-alone VMI) through virt-api's C(guestosinfo),
    C(userlist) and C(filesystemlist) subresources, as C(virtctl guestosinfo), C(virtctl userlist) and
    C(virtctl fslist) do.
  - Needs the QEMU guest agent running in the guest. When the VMI's C(AgentConnected) condition is not
    V(True) the task fails saying so, or with O(wait) it first waits (one watch) until the agent connects.
  - C(guestosinfo) already carries the users and file systems on current KubeVirt, so one request usually
    answers everything; the other two subresources are read only when it lacks them.
extends_documentation_fragment:
  - virtops.kubevirt.auth
options:
  name:
    description:
      - Name of the VirtualMachine (or stand-alone VirtualMachineInstance).
    type: str
    required: true
    aliases: [vm]
  namespace:
    description:
      - Namespace. Defaults to the kubeconfig context's namespace.
    type: str
  gather:
    description:
      - What to read.
    type: list
    elements: str
    choices: [os, users, filesystems]
    default: [os, users, filesystems]
  wait:
    description:
      - Wait until the VMI runs and its guest agent is connected, instead of failing at once.
    type: bool
    default: false
  wait_timeout:
    description:
      - Seconds to wait with O(wait); a positive number.
    type: int
    default: 120
attributes:
  check_mode:
    description: Reads only.
    support: full
  diff_mode:
    description: Nothing changes.
    support: none
notes:
  - Needs C(get) on C(virtualmachineinstances) and on C(virtualmachineinstances/guestosinfo),
    C(virtualmachineinstances/userlist) and C(virtualmachineinstances/filesystemlist) in the
    C(subresources.kubevirt.io) API group.
seealso:
  - module: virtops.kubevirt.vm_info
  - module: virtops.kubevirt.console
"""

EXAMPLES = r"""
- name: Read the guest OS, logged-in users and file systems
  virtops.kubevirt.guest_info:
    name: web1
    namespace: demo
  register: guest

- name: Fail when the root file system is almost full
  ansible.builtin.assert:
    that: item.used_percent < 90
    fail_msg: "{{ item.mount_point }} is {{ item.used_percent }}% full"
  loop: "{{ guest.guest.filesystems }}"
  loop_control:
    label: "{{ item.mount_point }}"

- name: Wait for the agent of a VM that just started, then read only the OS
  virtops.kubevirt.guest_info:
    name: web1
    namespace: demo
    gather: [os]
    wait: true
    wait_timeout: 300
"""

RETURN = r"""
guest:
  description: What the guest agent reports, in snake_case.
  returned: success
  type: dict
  contains:
    hostname:
      description: The guest's host name.
      type: str
      sample: web1
    timezone:
      description: The guest's time zone and offset.
      type: str
      sample: "UTC, 0"
    agent_version:
      description: Version of the QEMU guest agent.
      type: str
    os:
      description: C(id), C(name), C(pretty_name), C(version), C(version_id), C(kernel_release), C(kernel_version), C(machine).
      type: dict
      sample: {"id": "fedora", "name": "Fedora Linux", "pretty_name": "Fedora Linux 41", "version_id": "41"}
    fs_freeze_status:
      description: Whether the file systems are frozen (for snapshots) or thawed.
      type: str
    users:
      description: Logged-in users - C(name), C(domain), C(login_time).
      type: list
      elements: dict
    filesystems:
      description: >-
        Mounted file systems - C(disk_name), C(mount_point), C(type), C(used_bytes), C(total_bytes),
        C(used_percent), C(devices) (C(bus), C(serial)).
      type: list
      elements: dict
raw:
  description: The agent's answers as virt-api returned them, keyed by subresource.
  returned: success
  type: dict
vmi:
  description: The VMI - C(name), C(namespace), C(node), C(phase).
  returned: success
  type: dict
progress:
  description: The wait made with O(wait) (what, seconds, result).
  returned: always
  type: list
  elements: dict
api_requests:
  description: Number of HTTP requests the task sent to the API server.
  returned: always
  type: int
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.virtops.kubevirt.plugins.module_utils import runner
from ansible_collections.virtops.kubevirt.plugins.module_utils.runner import run_module
from ansible_collections.virtops.kubevirt.plugins.module_utils.workflows.guest_info import GuestInfoRunner


def argument_spec():
    spec = dict(
        name=dict(type="str", required=True, aliases=["vm"]),
        namespace=dict(type="str"),
        gather=dict(type="list", elements="str", choices=["os", "users", "filesystems"],
                    default=["os", "users", "filesystems"]),
        wait=dict(type="bool", default=False),
        wait_timeout=dict(type="int", default=120),
    )
    spec.update(runner.auth_spec())
    return spec


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    run_module(module, GuestInfoRunner)


if __name__ == "__main__":
    main()
