#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: virtops.kubevirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: vm_power
short_description: Start, stop, restart, pause, unpause, soft-reboot or live-migrate a KubeVirt VirtualMachine
version_added: 0.1.0
author:
  - virtops.kubevirt developers (!UNKNOWN)
description:
  - Brings a C(VirtualMachine) to a power O(state) through KubeVirt's virt-api subresources
    (C(start), C(stop), C(restart), C(migrate) on the VM; C(pause), C(unpause), C(softreboot) on its VMI),
    the same calls C(virtctl) makes, and waits until the VM is there.
  - O(state) is the one interface. V(started), V(stopped), V(paused) and V(unpaused) are states - a task that finds
    the VM in that state already does nothing and reports C(changed=false). V(restarted), V(soft_rebooted) and
    V(migrated) are actions - they act every time (V(migrated) is skipped when the VM already runs on a node that
    matches O(node_selector)).
  - The decision is taken by looking at the VM and its VMI, so check mode reports honestly what a run would do,
    and fails where the run would fail (for example V(migrated) on a VM that is not live-migratable).
  - A refusal from virt-api (HTTP 409, such as C(VM is not running)) becomes one sentence with what to do next.
extends_documentation_fragment:
  - virtops.kubevirt.auth
  - virtops.kubevirt.wait
options:
  name:
    description:
      - Name of the VirtualMachine.
    type: str
    required: true
  namespace:
    description:
      - Namespace of the VirtualMachine. Default the namespace of the kubeconfig context, else V(default).
    type: str
  state:
    description:
      - V(started) - the VM runs. A VM with run strategy V(Halted) is switched to V(Always) (as C(virtctl start)
        does); V(Manual) and V(RerunOnFailure) VMs get a start request. A VM with run strategy V(Always) whose VMI is
        missing is started by KubeVirt itself, so the task only waits.
      - V(stopped) - the VM does not run. V(Always) VMs are switched to V(Halted); V(Manual) and V(RerunOnFailure)
        VMs get a stop request. See O(grace_period) and O(force).
      - V(restarted) - the VMI is replaced by a new one (a stopped VM is started). Not possible with run strategy
        V(Halted) or V(Once).
      - V(paused) / V(unpaused) - the running VMI's vCPUs are paused or resumed (its memory stays in place).
      - V(soft_rebooted) - the guest is asked to reboot (needs the guest agent or ACPI); the VMI stays.
      - V(migrated) - the VMI is live-migrated to another node (see O(node_selector)); the task waits for the
        C(VirtualMachineInstanceMigration) to succeed and returns its source and target node. A VMI whose
        C(LiveMigratable) condition is C(False) fails the task with that condition's message.
      - With V(migrated), a migration of this VMI that is in flight already (started by an earlier run with
        O(wait=false), by C(virtctl migrate) or by KubeVirt) is joined - the task waits for that one and reports
        C(changed=false) - instead of starting a second one, which KubeVirt refuses ("in-flight migration
        detected"). Only this VMI's migrations, their target pods and their events are looked at.
      - A cancelled migration (deleted, as by C(virtctl migrate-cancel)) that KubeVirt is still aborting is not
        joined. KubeVirt refuses a new migration until that one has ended, so the task waits for it (within
        O(wait_timeout), one more RV(progress) record) and then starts its own.
      - When the wait for a migration this task started times out (O(wait_timeout)), the task cancels it - it
        deletes the C(VirtualMachineInstanceMigration), as C(virtctl migrate-cancel) does, so KubeVirt aborts it
        and the VM keeps running where it ran - and fails with what held it (typically the target pod's
        C(Unschedulable) message, when no node matches O(node_selector) or has room). A migration the task
        joined is left running, and the message says so. With O(wait=false) nothing is ever cancelled.
    type: str
    required: true
    choices: [started, stopped, restarted, paused, unpaused, soft_rebooted, migrated]
  paused:
    description:
      - With O(state=started), start the VM with its vCPUs paused (C(virtctl start --paused)). Ignored, with a
        warning, when the VM runs already.
    type: bool
    default: false
  grace_period:
    description:
      - With O(state=stopped), seconds the guest gets to shut down before it is killed, instead of the VM's
        C(terminationGracePeriodSeconds).
    type: int
  force:
    description:
      - With O(state=stopped), stop at once (grace period 0), also when the VM is stopping already.
      - With O(state=restarted), restart at once (the virt-launcher pod is deleted without a grace period).
    type: bool
    default: false
  node_selector:
    description:
      - With O(state=migrated), labels the target node must have (KubeVirt's C(addedNodeSelector), added to the
        VM's own node selector and affinity for this migration only).
    type: dict
  wait:
    description:
      - Wait until the VM reaches the state - running and O(wait_for) (V(started), V(restarted), V(unpaused)),
        VMI gone (V(stopped)), Paused condition (V(paused)), migration Succeeded (V(migrated)).
      - Unlike other modules of the collection the default is V(true), because a power action is usually followed
        by something that needs its result.
    type: bool
    default: true
attributes:
  check_mode:
    description: Decides from the VM, its VMI and (for V(migrated)) the migration in flight what would be done;
      nothing is sent to virt-api. RV(restart_required) is what the action would leave.
    support: full
  diff_mode:
    description: Power states are not object changes; no diff is returned.
    support: none
seealso:
  - module: virtops.kubevirt.vm
  - module: virtops.kubevirt.vm_info
notes:
  - Needs C(update) on C(virtualmachines/start), C(virtualmachines/stop), C(virtualmachines/restart),
    C(virtualmachines/migrate), C(virtualmachineinstances/pause), C(virtualmachineinstances/unpause) and
    C(virtualmachineinstances/softreboot) in the API group C(subresources.kubevirt.io), as far as the states
    used need them, plus C(get) and C(watch) on VMs, VMIs and (for V(migrated)) migrations.
"""

EXAMPLES = r"""
- name: Start a VM and wait until it has an IP address
  virtops.kubevirt.vm_power:
    name: web1
    namespace: demo
    state: started
    wait_for: [ready, ip]

- name: Start it with paused vCPUs (for example to attach a debugger or a console first)
  virtops.kubevirt.vm_power:
    name: web1
    namespace: demo
    state: started
    paused: true

- name: Stop it, giving the guest 60 seconds to shut down
  virtops.kubevirt.vm_power:
    name: web1
    namespace: demo
    state: stopped
    grace_period: 60

- name: Stop it now, even when it is stopping already
  virtops.kubevirt.vm_power:
    name: web1
    namespace: demo
    state: stopped
    force: true

- name: Restart it (a new VMI) and wait until it is ready again
  virtops.kubevirt.vm_power:
    name: web1
    namespace: demo
    state: restarted

- name: Pause and unpause it
  virtops.kubevirt.vm_power:
    name: web1
    namespace: demo
    state: "{{ item }}"
  loop: [paused, unpaused]

- name: Ask the guest to reboot itself
  virtops.kubevirt.vm_power:
    name: web1
    namespace: demo
    state: soft_rebooted

- name: Live-migrate it to a node in zone b and show where it went
  virtops.kubevirt.vm_power:
    name: web1
    namespace: demo
    state: migrated
    node_selector:
      topology.kubernetes.io/zone: b
  register: moved

- name: Show the move
  ansible.builtin.debug:
    msg: "{{ moved.migration.source_node }} -> {{ moved.migration.target_node }}"

- name: What would a stop do? (check mode looks at the VM, it never says changed blindly)
  virtops.kubevirt.vm_power:
    name: web1
    namespace: demo
    state: stopped
  check_mode: true
"""

RETURN = r"""
changed:
  description: Whether a power action was sent (would be, in check mode).
  returned: always
  type: bool
action:
  description: The action sent - V(start), V(stop), V(restart), V(pause), V(unpause), V(soft_reboot), V(migrate),
    or V(none) when the VM was in the state already.
  returned: success
  type: str
  sample: start
state:
  description: The state asked for.
  returned: success
  type: str
vm:
  description: The VirtualMachine after the action (cloud-init data redacted).
  returned: success
  type: dict
summary:
  description: Summary of the VM (see M(virtops.kubevirt.vm_info) RV(virtops.kubevirt.vm_info#module:summaries)).
  returned: success
  type: dict
vmi:
  description: Summary of the VM's VirtualMachineInstance; null when it has none.
  returned: success
  type: dict
printable_status:
  description: The VM's status as C(kubectl get vm) shows it (computed from the VMI after a wait).
  returned: success
  type: str
  sample: Running
ready:
  description: Whether the VMI is Running and Ready.
  returned: success
  type: bool
paused:
  description: Whether the VMI is paused.
  returned: success
  type: bool
node:
  description: The node the VMI runs on (after a migration, the target node).
  returned: success
  type: str
restart_required:
  description: Whether the VM still needs a restart to apply a template change (KubeVirt's C(RestartRequired)
    condition, read once KubeVirt has processed the latest change) - false after a start, restart or stop, which
    create the next VMI from the current template. In check mode, what the action would leave.
  returned: success
  type: bool
migration:
  description: With O(state=migrated), the migration made or joined, also when the task fails - C(name), C(phase)
    (as last seen), C(source_node), C(target_node), C(start_timestamp), C(end_timestamp) and C(cancelled) (true
    when the wait timed out and the task cancelled the migration it started); null when no migration was made.
  returned: when O(state=migrated)
  type: dict
  sample: {name: kubevirt-migrate-vm-x7k2p, phase: Succeeded, source_node: node01, target_node: node02,
           cancelled: false}
progress:
  description: The waits made - what was awaited, seconds, result, watches and events seen (migrations add
    the C(phases) they went through with the second each was reached).
  returned: always
  type: list
  elements: dict
  sample: [{waited_for: "VirtualMachine demo/web1 to be ready", seconds: 4.1, result: ok, watches: 1, events: 6}]
api_requests:
  description: Number of HTTP requests the task sent to the API server.
  returned: always
  type: int
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.virtops.kubevirt.plugins.module_utils.runner import run_module
from ansible_collections.virtops.kubevirt.plugins.module_utils.workflows.vm_power import VmPowerRunner, argument_spec


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    run_module(module, VmPowerRunner)


if __name__ == "__main__":
    main()
