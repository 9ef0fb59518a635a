#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: virtops.kubevirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: vm
short_description: Create, update and delete KubeVirt VirtualMachines, one or many, and wait for them
version_added: 0.1.0
author:
  - virtops.kubevirt developers (!UNKNOWN)
description:
  - Creates, updates or deletes a KubeVirt C(VirtualMachine) from high-level options (memory, cpu, disks,
    cloud-init, networks...), from a raw template O(spec) merged over them, or from a whole O(definition).
  - Writes use server-side apply with the field manager C(virtops.kubevirt); C(changed) compares the object
    before and after the write without server-owned fields, so server defaults never count as changes.
    Check mode sends the same write as a server-side dry run.
  - When the VM exists and the task gives none of the template options (O(cpu), O(memory), O(disks),
    O(networks), O(cloud_init), O(spec), O(instancetype)...), only O(labels), O(annotations) and the run
    strategy are changed (merge patch); nothing else of the VM is touched.
  - With O(vms) one task writes many VMs concurrently and waits for all of them with one watch per namespace.
  - O(state=absent) deletes the VM; its VMI and virt-launcher pod go with it. The DataVolumes of its own
    O(disks[].data_volume_template) (C(spec.dataVolumeTemplates)) are owned by the VM, so Kubernetes deletes
    them (and their PVCs, and the data) with it, unless O(keep_volumes=true). Volumes the VM only uses
    (O(disks[].pvc), O(disks[].data_volume)) are never deleted. With O(wait) the task waits until VM, VMI and
    pod are gone.
extends_documentation_fragment:
  - virtops.kubevirt.auth
  - virtops.kubevirt.wait
  - virtops.kubevirt.vmspec
options:
  name:
    description:
      - Name of the VirtualMachine (an RFC 1123 label, at most 63 characters).
      - Required unless O(vms) or O(definition) gives it.
    type: str
  namespace:
    description:
      - Namespace of the VirtualMachine. Default the namespace of the kubeconfig context, else V(default).
    type: str
  state:
    description:
      - V(present) creates or updates the VM; V(absent) deletes it.
    type: str
    choices: [present, absent]
    default: present
  run_strategy:
    description:
      - C(spec.runStrategy). V(Always) when the VM is created and this is not given; unchanged when
        the VM exists and this is not given.
      - V(Halted) stops the VM; with O(wait) the task waits until its VMI is gone.
    type: str
    choices: [Always, Halted, Manual, RerunOnFailure, Once]
  running:
    description:
      - Shorthand kept for kubevirt.core users - V(true) is O(run_strategy=Always), V(false) is O(run_strategy=Halted).
      - The deprecated C(spec.running) field is never written.
    type: bool
  instancetype:
    description:
      - The instance type, a name (cluster-wide C(VirtualMachineClusterInstancetype)) or a dict with
        C(name) and C(kind) (V(VirtualMachineInstancetype) or V(VirtualMachineClusterInstancetype)).
      - Can't be combined with O(cpu) or O(memory).
      - It must exist; that is checked before anything is written (a cluster-wide one only when the
        credentials may read it). One the VM uses already is not checked again (KubeVirt keeps a copy).
      - Or a dict with C(infer_from_volume), the name of one of the VM's volumes (O(disks)); KubeVirt reads the
        instance type from the C(instancetype.kubevirt.io/default-instancetype) (and C(-kind)) label of that
        volume's PVC, DataVolume or DataSource when the VM is created (C(inferFromVolume)), and
        C(infer_from_volume_failure_policy) V(Reject) (KubeVirt's default, the VM is refused when there is no
        label) or V(Ignore) (the VM is created without an instance type). Not together with C(name) or C(kind).
        An existing VM keeps what KubeVirt inferred.
    type: raw
  preference:
    description:
      - The preference, a name (C(VirtualMachineClusterPreference)) or a dict with C(name) and C(kind).
      - It must exist, checked as O(instancetype) is.
      - Or C(infer_from_volume) and C(infer_from_volume_failure_policy) as for O(instancetype) (label
        C(instancetype.kubevirt.io/default-preference)).
    type: raw
  definition:
    description:
      - A whole VirtualMachine (apiVersion, kind, metadata, spec), applied as given.
      - O(name), O(namespace), O(labels), O(annotations) and O(run_strategy) still apply over it;
        the template options can't be combined with it.
    type: dict
  keep_volumes:
    description:
      - With O(state=absent), keep the DataVolumes (and their PVCs) created from the VM's C(dataVolumeTemplates),
        which Kubernetes would otherwise delete with the VM. The VM is deleted with C(propagationPolicy=Orphan)
        (what C(kubectl delete vm --cascade=orphan) does), so the garbage collector removes the VM's
        ownerReference from them instead of deleting them; the module then deletes the VM's VMI and its
        ControllerRevisions itself. RV(kept_data_volumes) lists what was kept.
      - A kept DataVolume is an ordinary DataVolume afterwards; delete it with M(virtops.kubevirt.volume) when its
        data is no longer needed. A new VM whose C(dataVolumeTemplates) name it again adopts it, data included.
      - Volumes the VM only uses (O(disks[].pvc), O(disks[].data_volume)) are kept in any case.
    type: bool
    default: false
  vms:
    description:
      - Many VMs in one task. Each item is a VM name, or a dict with the options of this module (O(name), O(namespace), O(state),
        O(memory), O(disks), O(networks), O(definition)...); options given at the task level are defaults
        for every item (O(labels) and O(annotations) are merged, other options are replaced).
      - VMs are written concurrently and waited for with one watch per namespace; RV(results) has one entry per VM.
      - Mutually exclusive with O(name) and O(definition).
    type: list
    elements: raw
  return_objects:
    description:
      - Return RV(vm) (the whole VirtualMachine) and RV(vmi) (its VMI's summary), also in each RV(results) entry.
      - V(false) leaves both out; RV(summary) and the keys beside it still say where each VM is. A fleet's result
        (a registered variable, an AWX job event) is then under half the size, and the task ends sooner. The
        C(virtops.kubevirt.vm_provision) role sets it.
    type: bool
    default: true
attributes:
  check_mode:
    description: Server-side dry run; C(changed) is honest and nothing is written.
    support: full
  diff_mode:
    description: Before and after without server-owned fields; cloud-init data is redacted.
    support: full
seealso:
  - module: virtops.kubevirt.vm_info
  - module: virtops.kubevirt.vmi
notes:
  - Updating the template of a running VM changes nothing inside the guest until the VM restarts;
    RV(restart_required) then says so (KubeVirt's RestartRequired condition).
"""

EXAMPLES = r"""
- name: A Fedora VM on the pod network (masquerade), with an SSH key, waiting until it has an IP
  virtops.kubevirt.vm:
    name: web1
    namespace: demo
    memory: 2Gi
    cpu:
      cores: 2
    disks:
      - name: root
        image: quay.io/containerdisks/fedora:41
    cloud_init:
      user: fedora
      ssh_authorized_keys:
        - "{{ lookup('file', '~/.ssh/id_ed25519.pub') }}"
    networks:
      - name: default
        type: pod
        binding: masquerade
    wait: true
    wait_for: [ready, ip]
  register: web1

- name: Show where it runs
  ansible.builtin.debug:
    msg: "{{ web1.name }} runs on {{ web1.node }} at {{ web1.ip_address }}"

- name: A second NIC on a Multus linux-bridge network (NetworkAttachmentDefinition br1-net)
  virtops.kubevirt.vm:
    name: db1
    namespace: demo
    memory: 4Gi
    disks:
      - name: root
        image: quay.io/containerdisks/centos-stream:9
    networks:
      - name: default
        type: pod
      - name: br1
        type: multus
        network_name: demo/br1-net
        binding: bridge
        mac: "02:00:00:00:10:01"
    wait: true
    wait_for: [ready, "ip:br1"]

- name: A VM booting from an existing PVC, with a new 20Gi data disk imported by CDI
  virtops.kubevirt.vm:
    name: app1
    namespace: demo
    instancetype: u1.medium
    preference: fedora
    disks:
      - name: root
        pvc: app1-root
        boot_order: 1
      - name: data
        data_volume_template:
          size: 20Gi
          storage_class: standard
          blank: true
    cloud_init:
      user_data: |
        #cloud-config
        packages: [nginx]

- name: A VM whose SSH keys come from a Secret; changing the Secret changes the keys without a restart
  virtops.kubevirt.vm:
    name: app2
    namespace: apps
    memory: 2Gi
    disks:
      - name: root
        image: quay.io/containerdisks/fedora:41
    access_credentials:
      - ssh_public_key:
          secret: app2-ssh-keys
          users: [fedora]
      - user_password:
          secret: app2-passwords

- name: Twenty VMs in one task, written concurrently and waited with one watch
  virtops.kubevirt.vm:
    namespace: fleet
    memory: 1Gi
    disks:
      - name: root
        image: quay.io/containerdisks/fedora:41
    labels:
      app: fleet
    vms: "{{ query('ansible.builtin.sequence', 'start=1 end=20 format=node-%02d') }}"
    wait: true
  register: fleet

- name: The same with an explicit list; per-VM options override the task-level defaults
  virtops.kubevirt.vm:
    namespace: fleet
    memory: 1Gi
    disks:
      - name: root
        image: quay.io/containerdisks/fedora:41
    vms:
      - name: small
      - name: big
        memory: 8Gi
        labels:
          size: big
    wait: true

- name: Stop a VM (keeps everything else as it is)
  virtops.kubevirt.vm:
    name: web1
    namespace: demo
    run_strategy: Halted
    wait: true

# max_sockets and max_guest as the VM was started with (changing them needs a restart)
- name: Give a running VM a second socket and 4Gi without a restart (KubeVirt hot-plugs them; the task waits)
  virtops.kubevirt.vm:
    name: web1
    namespace: demo
    cpu:
      sockets: 2
      max_sockets: 8
    memory:
      guest: 4Gi
      max_guest: 16Gi
    disks:
      - name: root
        image: quay.io/containerdisks/fedora:41
  register: resized
  # resized.live_resize: ['CPU sockets 1 -> 2', 'memory 2Gi -> 4Gi']; resized.restart_required: false

- name: Show what would change, without changing it
  virtops.kubevirt.vm:
    name: web1
    namespace: demo
    labels:
      tier: frontend
  check_mode: true
  diff: true

- name: Delete a VM and wait until the VM, its VMI and its launcher pod are gone
  virtops.kubevirt.vm:
    name: web1
    namespace: demo
    state: absent
    wait: true

- name: Delete a VM but keep the DataVolumes (and data) of its dataVolumeTemplates
  virtops.kubevirt.vm:
    name: app1
    namespace: demo
    state: absent
    keep_volumes: true
    wait: true

- name: Apply a whole VirtualMachine
  virtops.kubevirt.vm:
    definition: "{{ lookup('file', 'vm.yaml') | from_yaml }}"
    namespace: demo

- name: Authenticate once for every module of the collection
  module_defaults:
    group/virtops.kubevirt.kubevirt:
      host: "{{ api_url }}"
      api_key: "{{ api_token }}"
      ca_cert: /etc/pki/cluster-ca.pem
  block:
    - name: Read a VM
      virtops.kubevirt.vm_info:
        name: web1
        namespace: demo
"""

RETURN = r"""
changed:
  description: Whether the VM (or any VM of O(vms)) was created, changed or deleted (would be, in check mode).
  returned: always
  type: bool
method:
  description: What was done - V(create), V(apply), V(patch), V(delete) or V(none).
  returned: when O(name) or O(definition) is used
  type: str
  sample: create
vm:
  description: The VirtualMachine as the server returned it after the write (cloud-init data redacted); null after deletion.
  returned: when O(name) or O(definition) is used, and O(return_objects=true)
  type: dict
summary:
  description: Summary of the VM (see M(virtops.kubevirt.vm_info) RV(virtops.kubevirt.vm_info#module:summaries)).
  returned: when O(state=present)
  type: dict
  sample:
    kind: VirtualMachine
    name: web1
    namespace: demo
    status: Running
    ready: true
    run_strategy: Always
    phase: Running
    node: node01
    ip_address: 10.244.0.12
    ip_addresses: [10.244.0.12, 192.168.10.5]
    networks:
      default: {ip_address: 10.244.0.12, ip_addresses: [10.244.0.12], mac: "02:00:00:00:00:01", interface_name: eth0}
    conditions_not_ok: []
    warning_events: []
    reason: null
vmi:
  description: Summary of the VM's VirtualMachineInstance (null when there is none or it was not read).
  returned: when O(state=present) and O(return_objects=true)
  type: dict
printable_status:
  description: The VM's status as C(kubectl get vm) shows it (after the wait, computed from the VMI).
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
  description: All IP addresses of the VMI.
  returned: when O(state=present)
  type: list
  elements: str
node:
  description: Node the VMI runs on.
  returned: when O(state=present)
  type: str
restart_required:
  description: Whether the change needs a restart of the VM to reach the guest (KubeVirt's RestartRequired condition).
  returned: when O(state=present)
  type: bool
live_resize:
  description:
    - What KubeVirt hot-plugged into the running VM for this task's change of O(cpu.sockets) or O(memory)
      (LiveUpdate rollout), for example V(CPU sockets 1 -> 2) and V(memory 1Gi -> 2Gi); empty when there was none.
    - The module waits (up to O(wait_timeout)) until the VMI reports the new topology and memory, after KubeVirt's
      workload-update live migration; the VMI is the same (no restart). Its wait is in RV(progress).
  returned: when O(state=present)
  type: list
  elements: str
kept_data_volumes:
  description: The DataVolumes of the VM's C(dataVolumeTemplates) that O(keep_volumes=true) kept (no longer owned by a VM).
  returned: when O(state=absent), O(keep_volumes=true) and the VM had C(dataVolumeTemplates)
  type: list
  elements: str
  sample: [app1-data]
diff:
  description: Before and after (redacted, without server-owned fields); a list with O(vms).
  returned: in diff mode
  type: raw
results:
  description: One entry per item of O(vms), with the keys returned for a single VM plus C(name),
    C(namespace), C(state), and C(failed)/C(msg) for VMs that failed.
  returned: when O(vms) is used
  type: list
  elements: dict
progress:
  description: The waits made - what was awaited, seconds, result, watches and events seen, and C(reads) when
    the wait read a VM that had no VMI yet (to tell why).
  returned: always
  type: list
  elements: dict
  sample: [{waited_for: "VirtualMachine demo/web1 to be ready", seconds: 2.3, result: ok, watches: 1, events: 4}]
api_requests:
  description: Number of HTTP requests the task sent to the API server.
  returned: always
  type: int
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.virtops.kubevirt.plugins.module_utils.runner import run_module
from ansible_collections.virtops.kubevirt.plugins.module_utils.workflows.vm import (
    VM_MUTUALLY_EXCLUSIVE,
    VmRunner,
    argument_spec,
)


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(),
        mutually_exclusive=VM_MUTUALLY_EXCLUSIVE + [("name", "vms"), ("definition", "vms")],
        required_one_of=[("name", "vms", "definition")],
        supports_check_mode=True,
    )
    run_module(module, VmRunner)


if __name__ == "__main__":
    main()
