#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: virtops.kubevirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: volume
short_description: Create and delete CDI DataVolumes and PersistentVolumeClaims for KubeVirt disks, and wait for their data
version_added: 0.1.0
author:
  - virtops.kubevirt developers (!UNKNOWN)
description:
  - Creates a CDI C(DataVolume) (O(kind=datavolume), the default) that imports a disk image over HTTP or from a
    registry, clones a PVC or a C(DataSource), prepares an upload target or an empty disk; or a plain
    C(PersistentVolumeClaim) (O(kind=pvc)).
  - With O(wait) the task follows the DataVolume through its phases (C(ImportScheduled), C(ImportInProgress)...)
    until C(Succeeded), with the import progress (C(45.12%)) in RV(summary) and the phases in RV(progress). A failing
    import (CDI retries it, counting C(restartCount)) fails the task with the DataVolume's error message once it
    restarted more than O(max_restarts) times. A PVC is waited for until C(Bound).
  - A DataVolume's spec can't change after creation (CDI rejects it). When the task asks for another spec the task
    fails and says which fields differ, unless O(recreate=true), which deletes the DataVolume (with its PVC and
    data) and creates it again. A PVC's spec can only grow its size, which the task does (volume expansion).
  - Labels and annotations of an existing volume are merged in; nothing else of it is changed.
  - O(state=absent) deletes the named object only - a DataVolume with the PVC it owns, or a PVC that belongs to no
    DataVolume. It never deletes anything else.
extends_documentation_fragment:
  - virtops.kubevirt.auth
  - virtops.kubevirt.wait_basic
options:
  name:
    description:
      - Name of the DataVolume or PVC (a DataVolume's PVC has the same name).
    type: str
    required: true
  namespace:
    description:
      - Namespace of the volume. Default the namespace of the kubeconfig context, else V(default).
    type: str
  state:
    description:
      - V(present) creates the volume (or checks that it is as asked); V(absent) deletes it.
    type: str
    choices: [present, absent]
    default: present
  kind:
    description:
      - V(datavolume) a CDI DataVolume (which creates and fills a PVC of the same name); V(pvc) a plain PVC.
    type: str
    choices: [datavolume, pvc]
    default: datavolume
  size:
    description:
      - Requested size, a Kubernetes quantity such as V(20Gi).
      - Required to create a volume, except for DataVolumes that clone a PVC or a DataSource with
        O(storage_api=storage) (CDI then takes the size of the source). A task on an existing volume may leave it
        out.
    type: str
  storage_class:
    description:
      - Storage class of the PVC. Default the cluster's default storage class.
      - It must exist; that is checked before the volume is created (or recreated), when the credentials may
        read StorageClasses (a cluster-wide read; without it the check is skipped).
    type: str
  access_modes:
    description:
      - Access modes. Live migration needs V(ReadWriteMany).
      - Default V([ReadWriteOnce]) for PVCs and for O(storage_api=pvc); with O(storage_api=storage) CDI chooses
        from the storage profile of the storage class.
    type: list
    elements: str
    choices: [ReadWriteOnce, ReadOnlyMany, ReadWriteMany, ReadWriteOncePod]
  volume_mode:
    description:
      - V(Filesystem) or V(Block).
    type: str
    choices: [Filesystem, Block]
  storage_api:
    description:
      - Which DataVolume API describes the PVC - V(storage) (C(spec.storage), recommended by CDI - it fills in
        access modes, volume mode and filesystem overhead from the storage profile) or V(pvc) (C(spec.pvc), taken
        as it is).
    type: str
    choices: [storage, pvc]
    default: storage
  source:
    description:
      - Where the data comes from; one of the suboptions. Default an empty disk (V(blank)).
      - O(kind=pvc) takes only O(source.blank) or O(source.pvc) (a CSI clone in the same namespace).
    type: dict
    suboptions:
      blank:
        description: An empty disk.
        type: bool
      http:
        description: Import a disk image (raw, qcow2, possibly compressed) from an HTTP(S) URL.
        type: dict
        suboptions:
          url:
            description: The URL.
            type: str
            required: true
          secret_ref:
            description: Secret with C(accessKeyId) and C(secretKey) for the URL.
            type: str
          cert_config_map:
            description: ConfigMap with the CA certificate of the server.
            type: str
      registry:
        description: Import a container disk image from a registry.
        type: dict
        suboptions:
          url:
            description: The image, such as V(quay.io/containerdisks/fedora:41) (C(docker://) is added).
            type: str
            required: true
          secret_ref:
            description: Secret with the registry credentials.
            type: str
          cert_config_map:
            description: ConfigMap with the CA certificate of the registry.
            type: str
          pull_method:
            description: V(pod) (CDI's importer pulls) or V(node) (the node's container runtime pulls).
            type: str
            choices: [pod, node]
      pvc:
        description: Clone an existing PVC.
        type: dict
        suboptions:
          name:
            description: The PVC to clone.
            type: str
            required: true
          namespace:
            description: Its namespace. Default O(namespace).
            type: str
      upload:
        description: An upload target (fill it with C(virtctl image-upload)); the wait ends at C(UploadReady).
        type: bool
      data_source:
        description: Clone what a CDI C(DataSource) points at (C(spec.sourceRef)).
        type: dict
        suboptions:
          name:
            description: The DataSource.
            type: str
            required: true
          namespace:
            description: Its namespace. Default O(namespace).
            type: str
  labels:
    description:
      - Labels, merged into the existing ones.
    type: dict
  annotations:
    description:
      - Annotations, merged into the existing ones (for example
        C(cdi.kubevirt.io/storage.bind.immediate.requested) to import into a WaitForFirstConsumer class at once).
    type: dict
  recreate:
    description:
      - When the DataVolume (or PVC) exists with a different spec, delete it and create it again.
        B(Its data is lost.) Without it such a task fails and says what differs.
    type: bool
    default: false
  max_restarts:
    description:
      - While waiting, fail as soon as the importer has restarted more than this many times (the DataVolume's
        C(status.restartCount)); CDI itself retries forever. V(-1) waits until O(wait_timeout).
    type: int
    default: 3
attributes:
  check_mode:
    description: Server-side dry run of the write; C(changed) is honest and nothing is written or deleted.
    support: full
  diff_mode:
    description: Before and after without server-owned fields.
    support: full
seealso:
  - module: virtops.kubevirt.vm_volume
  - module: virtops.kubevirt.vm
notes:
  - A DataVolume on a storage class with C(volumeBindingMode=WaitForFirstConsumer) is not imported until a VM uses
    it; the wait ends at C(WaitForFirstConsumer) with a warning saying so.
  - Deleting a PVC that a running VM uses leaves it C(Terminating) until the VM stops (the task warns).
"""

EXAMPLES = r"""
- name: Import a Fedora cloud image over HTTP and wait until it is there
  virtops.kubevirt.volume:
    name: fedora-root
    namespace: demo
    size: 10Gi
    source:
      http:
        url: https://download.fedoraproject.org/pub/fedora/linux/releases/41/Cloud/x86_64/images/Fedora-Cloud-Base-Generic-41-1.4.x86_64.qcow2
    wait: true
    wait_timeout: 1800
  register: root

- name: Show how it went
  ansible.builtin.debug:
    msg: "{{ root.summary.phase }} {{ root.summary.progress }} in {{ root.progress[0].seconds }}s"

- name: A container disk from a registry, on a shared storage class (live-migratable)
  virtops.kubevirt.volume:
    name: centos-root
    namespace: demo
    size: 20Gi
    storage_class: ocs-storagecluster-ceph-rbd-virtualization
    access_modes: [ReadWriteMany]
    volume_mode: Block
    source:
      registry:
        url: quay.io/containerdisks/centos-stream:9
    wait: true

- name: Clone it for a second VM
  virtops.kubevirt.volume:
    name: centos-root-2
    namespace: demo
    source:
      pvc:
        name: centos-root
    wait: true

- name: An empty 50Gi data disk
  virtops.kubevirt.volume:
    name: data1
    namespace: demo
    size: 50Gi

- name: A plain PVC (no CDI), then grow it
  virtops.kubevirt.volume:
    name: scratch
    namespace: demo
    kind: pvc
    size: "{{ item }}"
    wait: true
  loop: [5Gi, 10Gi]

- name: An upload target for virtctl image-upload
  virtops.kubevirt.volume:
    name: win2022-iso
    namespace: demo
    size: 6Gi
    source:
      upload: true
    wait: true

- name: Import again from another URL (the DataVolume spec is immutable, so it is recreated; its data is lost)
  virtops.kubevirt.volume:
    name: fedora-root
    namespace: demo
    size: 10Gi
    source:
      http:
        url: https://mirror.example.com/fedora-42.qcow2
    recreate: true
    wait: true

- name: Delete the DataVolume and its PVC
  virtops.kubevirt.volume:
    name: data1
    namespace: demo
    state: absent
    wait: true
"""

RETURN = r"""
changed:
  description: Whether the volume was created, recreated, changed or deleted (would be, in check mode).
  returned: always
  type: bool
method:
  description: What was done - V(create), V(patch) (labels, annotations or a larger PVC), V(recreate), V(delete) or
    V(none).
  returned: success
  type: str
  sample: create
volume:
  description: The DataVolume or PVC after the task (after the wait, when waited for); null after deletion.
  returned: success
  type: dict
summary:
  description: The volume in a few keys.
  returned: success
  type: dict
  contains:
    kind:
      description: V(DataVolume) or V(PersistentVolumeClaim).
      type: str
    phase:
      description: The DataVolume's phase (V(ImportInProgress), V(Succeeded)...) or the PVC's (V(Pending), V(Bound)).
      type: str
    progress:
      description: The DataVolume's import or clone progress, such as V(45.12%) or V(100.0%) (DataVolumes only).
      type: str
    restart_count:
      description: How often the importer restarted (DataVolumes only).
      type: int
    ready:
      description: Whether the data is there (DataVolume Succeeded, PVC Bound).
      type: bool
    bound:
      description: Whether the PVC is bound.
      type: bool
    size:
      description: The requested size.
      type: str
    capacity:
      description: The bound PVC's capacity.
      type: str
    storage_class:
      description: The storage class.
      type: str
  sample:
    kind: DataVolume
    name: fedora-root
    namespace: demo
    phase: Succeeded
    progress: 100.0%
    restart_count: 0
    ready: true
    bound: true
    source: http
    claim_name: fedora-root
    size: 10Gi
    capacity: 10Gi
    storage_class: lab-local
diff:
  description: Before and after, without server-owned fields.
  returned: in diff mode
  type: dict
progress:
  description: The waits made - what was awaited, seconds, result, watches and events; a DataVolume wait adds
    C(phases) (each phase seen, in order, with C(seconds) since the wait started when first seen, C(progress) then and
    C(last_progress) when the import moved on in that phase) and C(import_progress).
  returned: always
  type: list
  elements: dict
  sample:
    - waited_for: DataVolume demo/fedora-root to be imported (Succeeded)
      seconds: 42.7
      result: ok
      phases:
        - {phase: Pending, progress: N/A, seconds: 0.0}
        - {phase: ImportScheduled, progress: N/A, seconds: 0.4}
        - {phase: ImportInProgress, progress: 97.51%, seconds: 3.1}
        - {phase: Succeeded, progress: 100.0%, seconds: 42.7}
      import_progress: 100.0%
api_requests:
  description: Number of HTTP requests the task sent to the API server.
  returned: always
  type: int
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.virtops.kubevirt.plugins.module_utils.runner import run_module
from ansible_collections.virtops.kubevirt.plugins.module_utils.workflows.volume import VolumeRunner, argument_spec


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    run_module(module, VolumeRunner)


if __name__ == "__main__":
    main()
