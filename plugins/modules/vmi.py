#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: virtops.kubevirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: vmi
short_description: Create and delete stand-alone KubeVirt VirtualMachineInstances
version_added: 0.1.0
author:
  - virtops.kubevirt developers (!UNKNOWN)
description:
  - Creates or deletes a stand-alone C(VirtualMachineInstance) (a VMI that no VirtualMachine owns), built from
    the same options as M(virtops.kubevirt.vm) by the same spec builder, or from a whole O(definition).
  - A VMI's spec can't change after creation; a task that would change it fails and says so. Labels and
    annotations can change.
  - Nothing restarts a stand-alone VMI; when it ends (phase Failed or Succeeded) a wait for it fails at once.
  - Writes use server-side apply (check mode is a server-side dry run); C(changed) ignores server-owned fields.
extends_documentation_fragment:
  - virtops.kubevirt.auth
  - virtops.kubevirt.wait
  - virtops.kubevirt.vmspec
options:
  name:
    description:
      - Name of the VMI (an RFC 1123 label). Required unless O(definition) gives it.
    type: str
  namespace:
    description:
      - Namespace of the VMI. Default the namespace of the kubeconfig context, else V(default).
    type: str
  state:
    description:
      - V(present) creates the VMI; V(absent) deletes it (with O(wait), until the VMI and its virt-launcher pod are gone).
    type: str
    choices: [present, absent]
    default: present
  definition:
    description:
      - A whole VirtualMachineInstance (apiVersion, kind, metadata, spec), applied as given.
    type: dict
attributes:
  check_mode:
    description: Server-side dry run.
    support: full
  diff_mode:
    description: Before and after without server-owned fields; cloud-init data is redacted.
    support: full
seealso:
  - module: virtops.kubevirt.vm
  - module: virtops.kubevirt.vmi_info
"""

EXAMPLES = r"""
- name: A stand-alone VMI on the pod network with masquerade, waiting until it is ready
  virtops.kubevirt.vmi:
    name: scratch
    namespace: demo
    memory: 1Gi
    disks:
      - name: root
        image: quay.io/containerdisks/fedora:41
    cloud_init:
      user: fedora
      ssh_authorized_keys:
        - ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample user@example
    networks:
      - name: default
        type: pod
        binding: masquerade
    wait: true
    wait_for: [ready, ip]

- name: A VMI with a Multus linux-bridge second NIC and a PVC disk
  virtops.kubevirt.vmi:
    name: tester
    namespace: demo
    memory: 2Gi
    disks:
      - name: root
        pvc: tester-root
    networks:
      - name: default
      - name: br1
        network_name: br1-net
        binding: bridge
    wait: true

- name: Delete it and wait until it and its launcher pod are gone
  virtops.kubevirt.vmi:
    name: scratch
    namespace: demo
    state: absent
    wait: true
"""

RETURN = r"""
changed:
  description: Whether the VMI was created, changed or deleted (would be, in check mode).
  returned: always
  type: bool
method:
  description: What was done - V(create), V(apply), V(delete) or V(none).
  returned: always
  type: str
vmi_object:
  description: The VirtualMachineInstance as last seen (cloud-init data redacted); null after deletion.
  returned: always
  type: dict
summary:
  description: Summary of the VMI (see M(virtops.kubevirt.vmi_info) RV(virtops.kubevirt.vmi_info#module:summaries)).
  returned: when O(state=present)
  type: dict
phase:
  description: Phase of the VMI.
  returned: when O(state=present)
  type: str
  sample: Running
ready:
  description: Whether the VMI is Running and Ready.
  returned: when O(state=present)
  type: bool
ip_address:
  description: IP address of the first network.
  returned: when O(state=present)
  type: str
ip_addresses:
  description: All IP addresses.
  returned: when O(state=present)
  type: list
  elements: str
node:
  description: Node the VMI runs on.
  returned: when O(state=present)
  type: str
diff:
  description: Before and after (redacted, without server-owned fields).
  returned: in diff mode
  type: dict
progress:
  description: The waits made - what was awaited, seconds, result, watches and events seen.
  returned: always
  type: list
  elements: dict
api_requests:
  description: Number of HTTP requests the task sent to the API server.
  returned: always
  type: int
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.virtops.kubevirt.plugins.module_utils.runner import run_module
from ansible_collections.virtops.kubevirt.plugins.module_utils.workflows.vmi import (
    VMI_MUTUALLY_EXCLUSIVE,
    VmiRunner,
    argument_spec,
)


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(),
        mutually_exclusive=VMI_MUTUALLY_EXCLUSIVE,
        required_one_of=[("name", "definition")],
        supports_check_mode=True,
    )
    run_module(module, VmiRunner)


if __name__ == "__main__":
    main()
