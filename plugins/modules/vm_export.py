#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: virtops.kubevirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: vm_export
short_description: Export a KubeVirt VM, VM snapshot or PVC (VirtualMachineExport) and download its volumes
version_added: 0.2.0
author:
  - virtops.kubevirt developers (!UNKNOWN)
description:
  - Creates a C(VirtualMachineExport) (export.kubevirt.io) of a VM (O(vm)), a VM snapshot (O(snapshot)) or a
    PVC (O(pvc)), waits until it is C(Ready), and returns its download links and the name of the Secret that holds
    its token. The token itself is never returned.
  - KubeVirt exports a VM only while it is stopped - the export of a running VM stays C(Pending) (its C(Ready)
    condition says C(InUse), "Virtual Machine NS/NAME is running") until the VM stops, and the wait waits for that.
    The export of a VM or snapshot that has nothing to export ends C(Skipped), which fails the wait.
  - KubeVirt's C(VMExport) feature gate must be enabled in the KubeVirt CR; without it KubeVirt refuses the export
    and the task fails with one sentence, before anything is made.
  - An export's spec can't change after it is created; a task that asks for another source, token Secret or TTL
    fails and says what differs. Labels are merged in.
  - With O(download) one volume is downloaded to a local file over the export's external link (KubeVirt sets it when
    the cluster has an Ingress or Route for exports), verifying the server against the export's certificate
    (C(status.links.external.cert)), else against the cluster CA. The file is replaced only when the downloaded
    bytes differ (size and SHA-256), so a second run reports no change.
  - O(state=absent) deletes the export (KubeVirt then deletes its exporter pod, service and generated token
    Secret). Downloaded files are kept.
extends_documentation_fragment:
  - virtops.kubevirt.auth
options:
  name:
    description: Name of the VirtualMachineExport.
    type: str
    required: true
  namespace:
    description:
      - Namespace of the export and of its source. Default the namespace of the kubeconfig context, else V(default).
    type: str
  state:
    description: V(present) creates the export (or checks it is as asked); V(absent) deletes it.
    type: str
    choices: [present, absent]
    default: present
  vm:
    description:
      - Name of the VirtualMachine to export (its PVC and DataVolume disks). One of O(vm), O(snapshot), O(pvc) is
        required with O(state=present).
    type: str
  snapshot:
    description: Name of the VirtualMachineSnapshot to export (KubeVirt restores its volumes to PVCs for the export).
    type: str
  pvc:
    description: Name of the PersistentVolumeClaim to export.
    type: str
  token_secret:
    description:
      - Name of a Secret (key C(token)) that holds the token clients must send; KubeVirt's C(spec.tokenSecretRef).
      - Default a Secret KubeVirt makes for the export (C(export-token-NAME)).
    type: str
  ttl:
    description:
      - How long the export lasts from its creation (C(spec.ttlDuration), a duration such as V(2h) or V(90m));
        KubeVirt deletes it then. KubeVirt's default is 2 hours.
    type: str
  labels:
    description: Labels of the export (merged into an existing export's).
    type: dict
  download:
    description:
      - Download one volume of the export to a local file (on the host the module runs on) once it is Ready.
    type: dict
    suboptions:
      dest:
        description: The file to write (its folder must exist). It is replaced only when the bytes differ.
        type: path
        required: true
      volume:
        description: Name of the volume to download; required when the export has more than one.
        type: str
      format:
        description:
          - V(raw) the disk image (C(disk.img)), V(gzip) the image gzip-compressed (C(disk.img.gz)); both for KubeVirt
            disk images. V(tar.gz) the files of a filesystem PVC that holds no disk image.
        type: str
        choices: [raw, gzip, tar.gz]
        default: raw
  wait:
    description:
      - Wait until the export is C(Ready) (a watch from the write's resourceVersion), recording the phases and
        C(Ready) reasons seen in RV(progress). O(download) needs it.
    type: bool
    default: true
  wait_timeout:
    description: How many seconds to wait at most; a positive number.
    type: int
    default: 300
notes:
  - Needs RBAC to create and read C(virtualmachineexports) (export.kubevirt.io), to read the source, and, for
    O(download), to read the token Secret. See docs/rbac.md.
seealso:
  - name: KubeVirt export API
    description: VirtualMachineExport in the KubeVirt user guide.
    link: https://kubevirt.io/user-guide/storage/export_api/
"""

EXAMPLES = r"""
- name: Export the stopped VM db1 and wait for it
  virtops.kubevirt.vm_export:
    name: db1-export
    namespace: prod
    vm: db1
    ttl: 1h
  register: exported

- name: Download its root disk, compressed
  virtops.kubevirt.vm_export:
    name: db1-export
    namespace: prod
    vm: db1
    ttl: 1h
    download:
      volume: db1-root
      format: gzip
      dest: /backups/db1-root.img.gz

- name: Export a PVC with a token Secret of my own
  virtops.kubevirt.vm_export:
    name: data-export
    namespace: prod
    pvc: data
    token_secret: my-export-token

- name: Remove the export
  virtops.kubevirt.vm_export:
    name: db1-export
    namespace: prod
    state: absent
"""

RETURN = r"""
changed:
  description: Whether the export was created, relabelled or deleted, or the downloaded file was written.
  returned: always
  type: bool
method:
  description: What was done to the export - V(create), V(patch) (labels), V(delete) or V(none).
  returned: always
  type: str
export:
  description: The export (None after deletion).
  returned: always
  type: dict
  contains:
    name: {description: Name., type: str}
    namespace: {description: Namespace., type: str}
    source: {description: "The source: kind and name.", type: dict}
    phase: {description: "KubeVirt's phase: Pending, Ready, Terminated or Skipped.", type: str}
    ready: {description: Phase is Ready., type: bool}
    reason: {description: "Reason of the Ready condition (PodReady, InUse, VMNotFound, ...).", type: str}
    message: {description: "Message of the Ready condition (Virtual Machine NS/NAME is running, ...).", type: str}
    token_secret: {description: Name of the Secret that holds the token (key C(token)); never the token., type: str}
    ttl_expiration_time: {description: When KubeVirt deletes the export., type: str}
    service: {description: The exporter's Service., type: str}
    virtual_machine: {description: The exported VM (VM and snapshot sources)., type: str}
    volumes: {description: Names of the exported volumes., type: list, elements: str}
    links:
      description: >-
        C(internal) (inside the cluster) and C(external) (through the Ingress or Route) links, each
        C({volumes: [{name, formats: {raw: URL, gzip: URL, ...}}], manifests: {TYPE: URL}}), or None.
      type: dict
  sample:
    name: db1-export
    namespace: prod
    source: {kind: VirtualMachine, name: db1}
    phase: Ready
    ready: true
    reason: PodReady
    token_secret: export-token-db1-export
    volumes: [db1-root]
    links:
      external:
        volumes:
          - name: db1-root
            formats:
              raw: https://export.example.com/api/export.kubevirt.io/v1beta1/namespaces/prod/virtualmachineexports/db1-export/volumes/db1-root/disk.img
              gzip: https://export.example.com/api/export.kubevirt.io/v1beta1/namespaces/prod/virtualmachineexports/db1-export/volumes/db1-root/disk.img.gz
        manifests: {}
download:
  description: The download (O(download)).
  returned: when O(download) is given
  type: dict
  contains:
    dest: {description: The file (absolute path)., type: str}
    changed: {description: Whether the file was written (its bytes differed or it did not exist)., type: bool}
    volume: {description: The volume., type: str}
    format: {description: The format., type: str}
    url: {description: The URL downloaded from., type: str}
    size: {description: Bytes downloaded., type: int}
    sha256: {description: SHA-256 of the bytes., type: str}
progress:
  description: >-
    The wait for Ready (waited_for, seconds, result, phases - each phase and Ready reason seen with the second it was
    first seen and its message) and the download (downloaded, bytes, total, seconds).
  returned: always
  type: list
  elements: dict
diff:
  description: The export before and after (and the file's size and SHA-256 with O(download)), in diff mode.
  returned: in diff mode
  type: dict
api_requests:
  description: Number of HTTP requests the task sent to the API server.
  returned: always
  type: int
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.virtops.kubevirt.plugins.module_utils.runner import run_module
from ansible_collections.virtops.kubevirt.plugins.module_utils.workflows.vm_export import (
    MUTUALLY_EXCLUSIVE,
    VmExportRunner,
    argument_spec,
)


def main():
    module = AnsibleModule(argument_spec=argument_spec(), mutually_exclusive=MUTUALLY_EXCLUSIVE,
                           supports_check_mode=True)
    run_module(module, VmExportRunner)


if __name__ == "__main__":
    main()
