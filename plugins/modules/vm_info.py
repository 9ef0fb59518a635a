#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: virtops.kubevirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: vm_info
short_description: Read KubeVirt VirtualMachines with a summary of each, optionally waiting for them
version_added: 0.1.0
author:
  - virtops.kubevirt developers (!UNKNOWN)
description:
  - Reads KubeVirt C(VirtualMachine) objects by name, namespace (or all namespaces), label and field selectors.
  - Returns the objects and a summary of each that answers the usual questions - is it running and ready,
    where, on which IPs per network, which conditions are not OK and why, the guest OS, the virt-launcher
    pod, the latest warning events, and a one-line RV(summaries[].reason) when it is not Running.
  - The summary costs three more reads (VMIs, launcher pods, warning events), sent at the same time;
    O(summary=false) skips them.
  - With O(wait) it first waits (one watch) until the objects reach O(wait_for).
extends_documentation_fragment:
  - virtops.kubevirt.auth
  - virtops.kubevirt.wait
options:
  name:
    description:
      - Name of the VirtualMachine. Without it, every VirtualMachine that matches the other options.
    type: str
  namespace:
    description:
      - Namespace. Without it and without O(name), all namespaces; with O(name), the kubeconfig context's namespace.
    type: str
  label_selectors:
    description:
      - Label selectors, for example V(app=web) or V(tier in (a,b)); all must match. With O(name) the object is
        returned only when it matches them.
      - Kubernetes' selector syntax (V(=), V(==), V(!=), V(in), V(notin), V(key), V(!key)); one that does not parse
        is an error before any request.
    type: list
    elements: str
    default: []
  field_selectors:
    description:
      - Field selectors (KubeVirt objects support V(metadata.name) and V(metadata.namespace)).
    type: list
    elements: str
    default: []
  summary:
    description:
      - Return RV(summaries) (reads VMIs, launcher pods and warning events too).
    type: bool
    default: true
  include_standalone_vmis:
    description:
      - Also return the stand-alone VMIs (not owned by a VM) in the same scope, in RV(vmis) and RV(vmi_summaries).
      - O(label_selectors) and O(field_selectors) select them too, by the VMIs' own labels (a VM's labels are not
        copied to its VMI).
    type: bool
    default: false
  running:
    description:
      - With O(wait), V(false) waits until the VMs are stopped (their VMIs gone) instead of O(wait_for).
    type: bool
  snapshots:
    description:
      - Add each VM's C(VirtualMachineSnapshot)s to its summary (RV(summaries[].snapshots)), newest first - one more
        list request. Needs O(summary=true) and C(list) on C(virtualmachinesnapshots).
    type: bool
    default: false
attributes:
  check_mode:
    description: Reads only.
    support: full
  diff_mode:
    description: Nothing changes.
    support: none
seealso:
  - module: virtops.kubevirt.vm
"""

EXAMPLES = r"""
- name: Read one VirtualMachine
  virtops.kubevirt.vm_info:
    name: web1
    namespace: demo
  register: info

- name: A VM's snapshots, newest first
  virtops.kubevirt.vm_info:
    name: web1
    namespace: demo
    snapshots: true
  register: with_snapshots

- name: Why is it not running?
  ansible.builtin.debug:
    msg: "{{ info.summaries[0].status }}: {{ info.summaries[0].reason }}"
  when: not info.summaries[0].ready

- name: All VirtualMachines labelled app=web in all namespaces, objects only
  virtops.kubevirt.vm_info:
    label_selectors:
      - app=web
    summary: false

- name: Wait until it has an IP on the pod network and on br1
  virtops.kubevirt.vm_info:
    name: web1
    namespace: demo
    wait: true
    wait_for: [ready, ip, "ip:br1"]
    wait_timeout: 120

- name: Wait until a VM is stopped
  virtops.kubevirt.vm_info:
    name: web1
    namespace: demo
    running: false
    wait: true

- name: VMs and stand-alone VMIs of a namespace
  virtops.kubevirt.vm_info:
    namespace: demo
    include_standalone_vmis: true
"""

RETURN = r"""
resources:
  description: The VirtualMachines found (cloud-init data redacted).
  returned: success
  type: list
  elements: dict
summaries:
  description: One summary per RV(resources) entry, in the same order.
  returned: when O(summary=true)
  type: list
  elements: dict
  contains:
    kind:
      description: V(VirtualMachine) or V(VirtualMachineInstance).
      type: str
    name:
      description: Name.
      type: str
    snapshots:
      description: With O(snapshots=true), the VM's snapshots, newest first - C(name), C(phase), C(ready_to_use),
        C(creation_time), C(labels).
      type: list
      elements: dict
      sample: [{name: web1-before-upgrade, phase: Succeeded, ready_to_use: true, creation_time: "2026-12-06T11:00:00Z",
                labels: {}}]
    namespace:
      description: Namespace.
      type: str
    creation_time:
      description: When the VM was created (its C(metadata.creationTimestamp)).
      type: str
      sample: "2026-12-06T11:00:00Z"
    status:
      description: C(printableStatus) for a VM (as C(kubectl get vm) shows it), the phase or an error status for a VMI.
      type: str
      sample: ErrImagePull
    ready:
      description: Whether the VMI is Running with Ready=True.
      type: bool
    phase:
      description: VMI phase (null without a VMI).
      type: str
    node:
      description: Node of the VMI.
      type: str
    ip_address:
      description: IP address of the first network.
      type: str
    ip_addresses:
      description: All IP addresses.
      type: list
      elements: str
    networks:
      description: Per network name - C(ip_address), C(ip_addresses), C(mac), C(interface_name).
      type: dict
    conditions_not_ok:
      description: Conditions of the VM and VMI that are not in their healthy state, with C(type), C(status), C(reason), C(message).
      type: list
      elements: dict
    guest_os:
      description: Guest OS reported by the guest agent (C(name), C(version), C(pretty_name), C(kernel_release)...).
      type: dict
    agent_connected:
      description: Whether the guest agent is connected.
      type: bool
    ready_since:
      description: When the VMI last became ready (its C(Ready) condition's C(lastTransitionTime)); null when it is not ready.
      type: str
    launcher_pod:
      description: The virt-launcher pod - C(name), C(phase), C(node), and C(waiting) (container waiting reason).
      type: dict
    warning_events:
      description: The latest warning events about the VM, VMI and launcher pod (newest first), with C(reason), C(message), C(object), C(count), C(last_seen).
      type: list
      elements: dict
    reason:
      description: One line saying why it is not Running and ready (null when it is).
      type: str
      sample: "ErrImagePull: cannot pull the container disk image 'quay.io/example/does-not-exist:1' (...)"
    run_strategy:
      description: Run strategy of the VM.
      type: str
    created:
      description: Whether a VMI exists.
      type: bool
    restart_required:
      description: Whether KubeVirt waits for a restart to apply a change (RestartRequired).
      type: bool
    paused:
      description: Whether the VM is paused.
      type: bool
vmis:
  description: Stand-alone VMIs (cloud-init data redacted).
  returned: when O(include_standalone_vmis=true)
  type: list
  elements: dict
vmi_summaries:
  description: Summaries of RV(vmis), like M(virtops.kubevirt.vmi_info) returns.
  returned: when O(include_standalone_vmis=true)
  type: list
  elements: dict
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
from ansible_collections.virtops.kubevirt.plugins.module_utils.workflows.vm_info import VmInfoRunner, argument_spec


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(),
        supports_check_mode=True,
    )
    run_module(module, VmInfoRunner)


if __name__ == "__main__":
    main()
