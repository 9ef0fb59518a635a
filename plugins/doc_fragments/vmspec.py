# -*- coding: utf-8 -*-
# Copyright: virtops.kubevirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):
    """The high-level options that build a VM template spec or a VMI spec (module_utils/kubevirt/spec.py)."""

    DOCUMENTATION = r"""
options:
  labels:
    description:
      - Labels of the object. On a VM they are also put on the template (C(spec.template.metadata.labels)),
        also with O(virtops.kubevirt.vm#module:definition) or when only labels change on an existing VM, so the
        VMI and its virt-launcher pod carry them (from the VMI KubeVirt creates next).
      - Values are strings, kept as written. An unquoted V(true) or V(3) in YAML becomes V("true") or V("3")
        (never Python's V("True")), and a quoted V("True") is kept as it is. YAML 1.1 also reads unquoted
        V(yes), V(no), V(on) and V(off) as booleans (stored V("true")/V("false")); quote them to keep them.
    type: dict
  annotations:
    description:
      - Annotations of the object.
      - Values are strings, kept as written. An unquoted V(true) or V(3) in YAML becomes V("true") or V("3")
        (never Python's V("True")), and a quoted V("True") is kept as it is. YAML 1.1 also reads unquoted
        V(yes), V(no), V(on) and V(off) as booleans (stored V("true")/V("false")); quote them to keep them.
    type: dict
  cpu:
    description:
      - CPU topology and model (C(spec.domain.cpu)).
      - Can't be combined with an instance type.
    type: dict
    suboptions:
      cores:
        description: Cores per socket.
        type: int
      sockets:
        description: Sockets.
        type: int
      threads:
        description: Threads per core.
        type: int
      max_sockets:
        description:
          - The most sockets the VM can get without a restart (C(spec.domain.cpu.maxSockets)).
          - Without it KubeVirt sets the running VM's maximum to sockets times its C(maxHotplugRatio) (4 by
            default) or the cluster's C(liveUpdateConfiguration.maxCpuSockets).
          - With the C(LiveUpdate) rollout strategy (KubeVirt's default) a larger O(cpu.sockets) on a running VM
            is hot-plugged through a live migration, which the module waits for; fewer sockets, other topology
            changes or more than the maximum need a restart (KubeVirt's C(RestartRequired) condition).
        type: int
      model:
        description: CPU model, for example V(host-passthrough) or V(Haswell-noTSX).
        type: str
  memory:
    description:
      - Guest memory as a Kubernetes quantity, for example V(2Gi) or V(512Mi) (C(spec.domain.memory.guest)),
        or a dict with C(guest) (that quantity) and C(max_guest), the most memory the VM can get without a
        restart (C(spec.domain.memory.maxGuest); without it KubeVirt uses guest times its C(maxHotplugRatio),
        4 by default, or the cluster's C(liveUpdateConfiguration.maxGuest)).
      - V(2GB) or V(2G) are refused or mean decimal units; use binary suffixes (Ki, Mi, Gi, Ti).
      - With the C(LiveUpdate) rollout strategy more memory on a running, live-migratable VM is hot-plugged
        through a live migration, which the module waits for; less memory than the VM booted with, more than
        the maximum or a VM that cannot migrate need a restart (KubeVirt's C(RestartRequired) condition).
      - Can't be combined with an instance type.
    type: raw
  machine_type:
    description:
      - Machine type, for example V(q35) (C(spec.domain.machine.type)).
    type: str
  firmware:
    description:
      - Boot firmware.
    type: dict
    suboptions:
      bootloader:
        description: V(bios) or V(efi).
        type: str
        choices: [bios, efi]
        default: bios
      secure_boot:
        description: UEFI secure boot (needs O(firmware.bootloader=efi); turns on SMM).
        type: bool
        default: false
  disks:
    description:
      - Disks, in order. Each disk has exactly one source - O(disks[].image), O(disks[].pvc),
        O(disks[].data_volume), O(disks[].data_volume_template) or O(disks[].empty_disk).
      - Each disk becomes a C(spec.domain.devices.disks) entry and a C(spec.volumes) entry of the same name.
    type: list
    elements: dict
    suboptions:
      name:
        description: Disk and volume name (an RFC 1123 label). V(cloudinit) is reserved for O(cloud_init).
        type: str
        required: true
      type:
        description: Device type.
        type: str
        choices: [disk, cdrom, lun]
        default: disk
      bus:
        description: Bus; KubeVirt's default is virtio (cdroms need sata or scsi).
        type: str
        choices: [virtio, sata, scsi, usb]
      boot_order:
        description: Boot order, 1 first.
        type: int
      readonly:
        description: Attach read-only.
        type: bool
      serial:
        description: Serial number shown to the guest.
        type: str
      cache:
        description: Cache mode.
        type: str
        choices: [none, writethrough, writeback]
      image:
        description: Container disk image, for example V(quay.io/containerdisks/fedora:latest) (ephemeral).
        type: str
      image_pull_policy:
        description: Pull policy of O(disks[].image).
        type: str
        choices: [Always, IfNotPresent, Never]
      pvc:
        description: Name of an existing PersistentVolumeClaim in the same namespace.
        type: str
      data_volume:
        description: Name of an existing DataVolume in the same namespace.
        type: str
      hotpluggable:
        description: Mark a O(disks[].pvc) or O(disks[].data_volume) volume hot-pluggable.
        type: bool
      empty_disk:
        description: Size of an ephemeral empty disk, for example V(1Gi).
        type: str
      data_volume_template:
        description:
          - A new DataVolume owned by the VM (VMs only), imported or cloned by CDI before the VM starts.
          - Deleting the VM deletes this DataVolume and its PVC; existing O(disks[].pvc) and
            O(disks[].data_volume) are never deleted by this collection.
        type: dict
        suboptions:
          name:
            description: DataVolume name; default V(<vm name>-<disk name>).
            type: str
          size:
            description: Size, for example V(20Gi).
            type: str
            required: true
          storage_class:
            description:
              - Storage class; the cluster default when omitted.
              - It must exist (checked before anything is written, when the credentials may read
                StorageClasses; otherwise the check is skipped).
            type: str
          access_modes:
            description: Access modes, for example V([ReadWriteMany]); CDI picks from the storage profile when omitted.
            type: list
            elements: str
          volume_mode:
            description: Volume mode.
            type: str
            choices: [Filesystem, Block]
          http:
            description: Import from this HTTP(S) URL (qcow2, raw, iso, optionally compressed).
            type: str
          registry:
            description: Import from this container image (V(docker://) is added when no scheme is given).
            type: str
          pvc:
            description: Clone this PVC, V(name) or V(namespace/name).
            type: str
          data_source:
            description: Clone this CDI DataSource (a golden image), V(name) or V(namespace/name).
            type: str
          blank:
            description: A blank disk (the default when no source is given).
            type: bool
            default: false
  cloud_init:
    description:
      - Cloud-init data, attached as a disk named V(cloudinit).
      - Either O(cloud_init.user_data), O(cloud_init.secret), or any of O(cloud_init.user),
        O(cloud_init.password), O(cloud_init.ssh_authorized_keys), O(cloud_init.hostname) from which a
        C(#cloud-config) is generated.
      - Inline data is limited to 2048 bytes by KubeVirt; larger data belongs in a Secret.
      - For passwords, tokens or keys, O(cloud_init.secret) (a C(secretRef)) is the recommended way - inline
        user data, including what O(cloud_init.password) generates, is stored in the VirtualMachine object, where
        anyone who may read VMs can see it. The collection never shows it (results, diffs, lookups, inventory,
        reports; see docs/security.md), but the cluster does.
    type: dict
    suboptions:
      type:
        description: NoCloud or ConfigDrive data source.
        type: str
        choices: [nocloud, configdrive]
        default: nocloud
      user:
        description: Name of the default user.
        type: str
      password:
        description:
          - Password of the default user (password login over SSH is enabled with it).
          - Stored in the VM's inline user data; prefer O(cloud_init.secret) with a Secret you manage.
        type: str
      ssh_authorized_keys:
        description: Public SSH keys of the default user.
        type: list
        elements: str
      hostname:
        description: Guest host name.
        type: str
      user_data:
        description: Raw user data, for example a C(#cloud-config) document.
        type: str
      network_data:
        description: Raw network data (netplan v1/v2).
        type: str
      secret:
        description:
          - Name of a Secret whose C(userdata) key holds the user data (C(secretRef)); the recommended way for user
            data with secrets in it. The Secret must exist in the VM's namespace before the task (it is checked
            before anything is written).
        type: str
      network_data_secret:
        description: Name of a Secret whose C(networkdata) key holds the network data (it must exist, as for
          O(cloud_init.secret)).
        type: str
  access_credentials:
    description:
      - KubeVirt's C(accessCredentials) - SSH public keys from a Secret, and guest user passwords from a Secret -
        given to the guest without putting them in the VM object. Each entry has exactly one of
        O(access_credentials[].ssh_public_key) or O(access_credentials[].user_password).
      - Every Secret named must exist in the VM's namespace; this is checked before anything is written.
      - A Secret's content changes reach a running guest without a restart when propagated by the guest agent
        (virt-launcher re-reads it and syncs every few seconds; the VMI's condition
        C(AccessCredentialsSynchronized) says how it went). Adding or removing an entry changes the VM's
        template, which KubeVirt applies at the next restart (C(RestartRequired)).
      - The guest agent ways need qemu-guest-agent in the guest (C(guest-ssh-add-authorized-keys),
        C(guest-set-user-password)).
    type: list
    elements: dict
    suboptions:
      ssh_public_key:
        description:
          - Public SSH keys from a Secret; every value of the Secret holds one or more keys, one per line.
        type: dict
        suboptions:
          secret:
            description: Name of the Secret in the VM's namespace.
            type: str
            required: true
          propagation:
            description:
              - How the keys reach the guest. V(qemu_guest_agent) writes them into each user's
                C(~/.ssh/authorized_keys) while the guest runs, and keeps them in step with the Secret (the file
                then holds exactly the Secret's keys). V(nocloud) and V(configdrive) put them in the cloud-init
                meta-data at boot (C(public-keys)), for cloud-init's default user; they need O(cloud_init) of
                that type.
            type: str
            choices: [qemu_guest_agent, nocloud, configdrive]
            default: qemu_guest_agent
          users:
            description:
              - Guest users whose authorized keys are set (required for V(qemu_guest_agent), not allowed otherwise).
            type: list
            elements: str
      user_password:
        description:
          - Guest user passwords from a Secret, set through the guest agent; each key of the Secret is a user name,
            its value that user's password.
        type: dict
        suboptions:
          secret:
            description: Name of the Secret in the VM's namespace.
            type: str
            required: true
  networks:
    description:
      - Network interfaces, in order. Without this option the VM gets one pod network named V(default)
        with masquerade binding (unless O(spec) sets networks itself).
      - Each entry becomes a C(spec.domain.devices.interfaces) entry and a C(spec.networks) entry.
    type: list
    elements: dict
    suboptions:
      name:
        description: Interface and network name (an RFC 1123 label).
        type: str
        required: true
      type:
        description:
          - V(pod) the pod network (one at most); V(multus) a NetworkAttachmentDefinition;
            V(sriov) an SR-IOV NetworkAttachmentDefinition.
          - Default V(multus) when O(networks[].network_name) is set, else V(pod).
        type: str
        choices: [pod, multus, sriov]
      network_name:
        description: The NetworkAttachmentDefinition, V(name) or V(namespace/name) (multus and sriov).
        type: str
      binding:
        description:
          - How the interface is connected. V(masquerade) (pod default), V(bridge) (multus default),
            V(sriov) (sriov), or the name of a network binding plugin such as V(passt).
          - A plugin must be registered in the cluster's KubeVirt CR (C(spec.configuration.network.binding)); that is
            checked before anything is written when the credentials may list C(kubevirts), else skipped.
        type: str
      default:
        description: Use this multus network as the VM's default network instead of the pod network.
        type: bool
        default: false
      mac:
        description: MAC address, for example V(02:00:00:00:00:01).
        type: str
      model:
        description: NIC model, for example V(virtio) or V(e1000e).
        type: str
      ports:
        description: Ports to forward (masquerade binding).
        type: list
        elements: dict
        suboptions:
          name:
            description: Port name.
            type: str
          port:
            description: Port number.
            type: int
            required: true
          protocol:
            description: Protocol.
            type: str
            choices: [TCP, UDP]
            default: TCP
  node_selector:
    description:
      - Node labels the VM must be scheduled on (C(spec.nodeSelector)).
      - Values are strings kept as written, as for O(labels) (V(true) becomes V("true")).
    type: dict
  tolerations:
    description: Kubernetes tolerations (C(spec.tolerations)), as in a pod spec.
    type: list
    elements: dict
  affinity:
    description: Kubernetes affinity (C(spec.affinity)), as in a pod spec.
    type: dict
  eviction_strategy:
    description: What happens when the node is drained.
    type: str
    choices: [LiveMigrate, LiveMigrateIfPossible, External, None]
  termination_grace_period:
    description: Seconds the guest gets to shut down (C(spec.terminationGracePeriodSeconds)).
    type: int
  hostname:
    description: Host name given to the VMI (C(spec.hostname)); default the object's name.
    type: str
  spec:
    description:
      - A raw VirtualMachineInstance spec merged over what the other options build. Dicts merge key by
        key and lists of named entries (disks, interfaces, networks, volumes) merge by name; other
        values replace.
    type: dict
"""
