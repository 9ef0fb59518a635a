#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: virtops.kubevirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: vm_pool
short_description: Create, scale, pause and delete KubeVirt VirtualMachinePools and wait for their VMs
version_added: 0.2.0
author:
  - virtops.kubevirt developers (!UNKNOWN)
description:
  - Creates, updates or deletes a KubeVirt C(VirtualMachinePool) (C(pool.kubevirt.io/v1beta1)) - O(replicas) VMs
    made from one VM template. KubeVirt's pool controller names them C(<pool>-<index>) from index 0, suffixes
    the DataVolumes of their O(disks[].data_volume_template) with the index, and owns them.
  - The VM template is built from the same options as M(virtops.kubevirt.vm) (O(memory), O(cpu), O(disks),
    O(networks), O(cloud_init), O(instancetype), O(spec)...); O(labels) and O(annotations) are the VMs'.
  - Without O(selector) the pool selects C(kubevirt.io/vmpool=<name>), and that label is added to the VMs'.
    A selector that does not match the VMs' labels is refused before anything is written (KubeVirt would
    never create the VMs).
  - On an existing pool a task that gives none of the template options changes only what it names
    (O(replicas) to scale, O(paused), O(selector), O(pool_labels), O(pool_annotations), the VMs' O(labels),
    O(annotations) and O(run_strategy)), with a merge patch. A task with template options applies the whole
    pool (server-side apply); options it does not give keep the pool's current values. KubeVirt writes a
    changed template to the existing VMs and, by default (the pool's proactive update), restarts their running
    VMIs with it, as many at a time as C(spec.maxUnavailable) allows (default all); with O(wait) the task waits
    until O(replicas) VMIs of the new template are ready.
  - O(state=absent) deletes the pool; its VMs (and their VMIs and own DataVolumes) go with it.
  - Check mode sends the same write as a server-side dry run; C(changed) compares the pool before and after
    without server-owned fields.
extends_documentation_fragment:
  - virtops.kubevirt.auth
  - virtops.kubevirt.wait_basic
  - virtops.kubevirt.vmspec
options:
  name:
    description:
      - Name of the VirtualMachinePool. Its VMs are named C(<name>-<index>), so C(<name>-<replicas - 1>) must be a
        valid VM name (at most 63 characters).
    type: str
    required: true
  namespace:
    description:
      - Namespace of the pool. Default the namespace of the kubeconfig context, else V(default).
    type: str
  state:
    description:
      - V(present) creates or updates the pool; V(absent) deletes it and its VMs.
      - With O(wait), V(present) waits until the pool has O(replicas) VMs and all are ready (C(status.readyReplicas)),
        after a template change first until O(replicas) VMIs made from it are ready;
        for O(run_strategy=Halted) or V(Manual), until it has O(replicas) VMs; for a paused pool, until KubeVirt
        reports it paused (condition C(ReplicaPaused)). V(absent) waits until the pool and its VMs are gone.
    type: str
    choices: [present, absent]
    default: present
  replicas:
    description:
      - How many VMs the pool keeps (C(spec.replicas)); changing it scales the pool. V(0) or more.
      - V(1) when the pool is created and this is not given; unchanged when the pool exists and this is not given.
      - On scale-in KubeVirt picks the VMs to delete (randomly, unless O(spec) of the pool says otherwise).
    type: int
  selector:
    description:
      - The pool's label selector (C(spec.selector)); it must match the VMs' O(labels).
      - Default C(matchLabels) C(kubevirt.io/vmpool=<name>) on creation, unchanged afterwards.
    type: dict
    suboptions:
      match_labels:
        description: Labels the VMs must have (C(matchLabels)).
        type: dict
      match_expressions:
        description: Requirements on the VMs' labels (C(matchExpressions)), all of which must hold.
        type: list
        elements: dict
        suboptions:
          key:
            description: The label key.
            type: str
            required: true
          operator:
            description: V(In) and V(NotIn) take O(selector.match_expressions[].values), the others none.
            type: str
            required: true
            choices: [In, NotIn, Exists, DoesNotExist]
          values:
            description: The values for V(In) and V(NotIn).
            type: list
            elements: str
  paused:
    description:
      - C(spec.paused). A paused pool's controller neither scales it nor updates its VMs (the VMs keep running).
      - Unchanged when not given.
    type: bool
  run_strategy:
    description:
      - The VMs' C(spec.runStrategy). V(Always) when the pool is created and this is not given; unchanged
        when the pool exists and this is not given.
    type: str
    choices: [Always, Halted, Manual, RerunOnFailure, Once]
  instancetype:
    description:
      - The VMs' instance type, as O(virtops.kubevirt.vm#module:instancetype) of the vm module takes it (a name, or
        a dict with C(name) and C(kind)); it must exist. Can't be combined with O(cpu) or O(memory).
    type: raw
  preference:
    description:
      - The VMs' preference, as O(virtops.kubevirt.vm#module:preference) of the vm module takes it.
    type: raw
  pool_labels:
    description:
      - Labels of the pool object itself (the VMs' are O(labels)). Merged in.
    type: dict
  pool_annotations:
    description:
      - Annotations of the pool object itself (the VMs' are O(annotations)). Merged in.
    type: dict
notes:
  - Scale by giving only O(name) and O(replicas); nothing else of the pool is touched.
seealso:
  - module: virtops.kubevirt.vm
  - module: virtops.kubevirt.vm_info
"""

EXAMPLES = r"""
- name: A pool of three web VMs, waited for until all are ready
  virtops.kubevirt.vm_pool:
    name: web
    namespace: demo
    replicas: 3
    memory: 1Gi
    labels:
      app: web
    disks:
      - name: root
        image: quay.io/containerdisks/fedora:41
    cloud_init:
      user: fedora
      ssh_authorized_keys: ["{{ lookup('file', '~/.ssh/id_ed25519.pub') }}"]
    wait: true
  register: pool

- name: Scale it to five (only replicas changes)
  virtops.kubevirt.vm_pool:
    name: web
    namespace: demo
    replicas: 5
    wait: true

- name: Pause it (KubeVirt stops scaling and updating its VMs)
  virtops.kubevirt.vm_pool:
    name: web
    namespace: demo
    paused: true

- name: Delete it and its VMs
  virtops.kubevirt.vm_pool:
    name: web
    namespace: demo
    state: absent
    wait: true
"""

RETURN = r"""
changed:
  description: Whether the pool was (or, in check mode, would be) created, changed or deleted.
  returned: always
  type: bool
method:
  description: V(create), V(apply), V(patch), V(delete), or V(none) when nothing changed.
  returned: success
  type: str
  sample: create
pool:
  description: The VirtualMachinePool after the task (cloud-init data redacted); null after O(state=absent).
  returned: success
  type: dict
vms:
  description:
    - Summaries of the pool's VMs by name (see M(virtops.kubevirt.vm_info) RV(virtops.kubevirt.vm_info#module:summaries)),
      read after the wait; with O(state=absent) the VMs that were deleted with the pool. Empty when check mode
      creates the pool.
  returned: success
  type: list
  elements: dict
  sample:
    - {kind: VirtualMachine, name: web-0, namespace: demo, status: Running, ready: true}
diff:
  description: The pool before and after, without server-owned fields.
  returned: in diff mode
  type: dict
progress:
  description: The waits made - what was awaited, seconds, result, watches and events.
  returned: always
  type: list
  elements: dict
  sample:
    - {waited_for: VirtualMachinePool demo/web to have 3 ready VMs, seconds: 21.4, result: ok, watches: 1, events: 9}
api_requests:
  description: Number of HTTP requests the task sent to the API server.
  returned: always
  type: int
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.virtops.kubevirt.plugins.module_utils.runner import run_module
from ansible_collections.virtops.kubevirt.plugins.module_utils.workflows.vm_pool import VmPoolRunner, argument_spec


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    run_module(module, VmPoolRunner)


if __name__ == "__main__":
    main()
