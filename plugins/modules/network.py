#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: virtops.kubevirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: network
short_description: Manage Multus NetworkAttachmentDefinitions (Linux bridge, SR-IOV or raw CNI) for KubeVirt VMs
version_added: 0.1.0
author:
  - virtops.kubevirt developers (!UNKNOWN)
description:
  - Creates, updates or deletes a Multus C(NetworkAttachmentDefinition), the secondary network a VM's
    C(multus) interface names (see O(virtops.kubevirt.vm#module:networks[].network_name)).
  - Builds the CNI config from options for a Linux bridge (O(type=bridge) - bridge, VLAN, MTU, MAC spoof check,
    IPAM) or an SR-IOV network (O(type=sriov) - resource name, VLAN, IPAM), or takes a raw CNI O(config).
  - Sets the annotation C(k8s.v1.cni.cncf.io/resourceName) as KubeVirt expects - C(bridge.network.kubevirt.io/BRIDGE)
    for a bridge (so the pods land on nodes that have the bridge), the SR-IOV device plugin resource for SR-IOV
    (so the pods get a VF).
  - Idempotent on the parsed config - a config that differs only in key order or whitespace is no change and is
    not rewritten. Labels and annotations are merged in.
extends_documentation_fragment:
  - virtops.kubevirt.auth
options:
  name:
    description:
      - Name of the NetworkAttachmentDefinition.
    type: str
    required: true
  namespace:
    description:
      - Namespace of the NetworkAttachmentDefinition (a VM in another namespace names it C(namespace/name)).
        Default the namespace of the kubeconfig context, else V(default).
    type: str
  state:
    description:
      - V(present) creates or updates it; V(absent) deletes it (the task warns when VMs still use it).
    type: str
    choices: [present, absent]
    default: present
  type:
    description:
      - V(bridge) a Linux bridge on the nodes (the CNI C(bridge) plugin), V(sriov) an SR-IOV virtual function.
      - Default V(bridge) unless O(config) is given.
    type: str
    choices: [bridge, sriov]
  bridge:
    description:
      - The Linux bridge on the nodes, for example V(br1). Required for O(type=bridge).
    type: str
  cni_type:
    description:
      - The CNI plugin type to write, when it is not the default V(bridge) / V(sriov) - for example V(cnv-bridge) on
        older OpenShift Virtualization.
    type: str
  cni_name:
    description:
      - The CNI network name (C(name) in the config). Default O(name).
    type: str
  cni_version:
    description:
      - The CNI spec version of the config.
    type: str
    default: 0.3.1
  vlan:
    description:
      - VLAN tag (0-4094) of the bridge port or the VF.
    type: int
  mtu:
    description:
      - MTU of the bridge ports (bridge only).
    type: int
  macspoofchk:
    description:
      - Drop frames from other MAC addresses than the interface's (C(macspoofchk) of the bridge, C(spoofchk) of SR-IOV).
    type: bool
  disable_container_interface:
    description:
      - Leave the pod-side veth down (C(disableContainerInterface), bridge only); KubeVirt recommends it for
        bridge-bound interfaces that are live-migrated.
    type: bool
  resource_name:
    description:
      - The value of the C(k8s.v1.cni.cncf.io/resourceName) annotation. Required for O(type=sriov) (the SR-IOV device
        plugin resource, for example V(intel.com/sriov_net)) and for a raw SR-IOV O(config).
      - Default for a bridge C(bridge.network.kubevirt.io/BRIDGE).
    type: str
  ipam:
    description:
      - IP address management of the network. Without it the interfaces get no address from CNI (the guest may
        use DHCP on the wire or static addresses).
    type: dict
    suboptions:
      type:
        description:
          - V(none), V(host-local) (per node, needs O(ipam.subnet)), V(whereabouts) (cluster-wide, needs
            O(ipam.range)), V(static) (needs O(ipam.addresses)) or V(dhcp).
        type: str
        choices: [none, host-local, whereabouts, static, dhcp]
        default: none
      subnet:
        description: The subnet (host-local), for example V(192.168.10.0/24).
        type: str
      range:
        description: The range (whereabouts), for example V(192.168.10.0/24).
        type: str
      range_start:
        description: First address to give out (host-local, whereabouts).
        type: str
      range_end:
        description: Last address to give out (host-local, whereabouts).
        type: str
      exclude:
        description: CIDRs not to give out (whereabouts).
        type: list
        elements: str
      gateway:
        description: The gateway (host-local, whereabouts).
        type: str
      routes:
        description: Routes to add in the pod.
        type: list
        elements: dict
        suboptions:
          dst:
            description: Destination CIDR.
            type: str
            required: true
          gw:
            description: Gateway.
            type: str
      addresses:
        description: Addresses with prefix (static).
        type: list
        elements: dict
        suboptions:
          address:
            description: Address with prefix, for example V(192.168.10.5/24).
            type: str
            required: true
          gateway:
            description: Gateway.
            type: str
  config:
    description:
      - A whole CNI config (or conflist), as a dict or a JSON string. It must parse and have C(cniVersion) and
        C(type) (a conflist C(plugins), each with C(type)). Mutually exclusive with the typed options.
    type: raw
  labels:
    description:
      - Labels, merged into the existing ones.
    type: dict
  annotations:
    description:
      - Annotations, merged into the existing ones.
    type: dict
attributes:
  check_mode:
    description: Server-side dry run of the write; C(changed) is honest and nothing is written.
    support: full
  diff_mode:
    description: Before and after, with the config shown parsed.
    support: full
seealso:
  - module: virtops.kubevirt.vm
  - module: virtops.kubevirt.vm_nic
notes:
  - The bridge, VLANs and SR-IOV VFs must exist on the nodes (for example configured with
    kubernetes-nmstate and the SR-IOV network operator); this module describes the attachment only.
  - Needs C(get), C(create), C(patch) and C(delete) on C(network-attachment-definitions) in C(k8s.cni.cncf.io).
"""

EXAMPLES = r"""
- name: A Linux bridge network on br1, VLAN 100, with addresses from host-local IPAM
  virtops.kubevirt.network:
    name: br1-net
    namespace: demo
    type: bridge
    bridge: br1
    vlan: 100
    macspoofchk: true
    ipam:
      type: host-local
      subnet: 192.168.10.0/24
      range_start: 192.168.10.100
      range_end: 192.168.10.199
      gateway: 192.168.10.1

- name: A bridge network without IPAM (the guests use DHCP or static addresses of their own)
  virtops.kubevirt.network:
    name: lab-net
    namespace: demo
    bridge: br-lab
    mtu: 9000

- name: Cluster-wide addresses with whereabouts
  virtops.kubevirt.network:
    name: storage-net
    namespace: demo
    bridge: br-storage
    ipam:
      type: whereabouts
      range: 10.20.0.0/16
      exclude: [10.20.0.0/24]

- name: An SR-IOV network
  virtops.kubevirt.network:
    name: sriov-net
    namespace: demo
    type: sriov
    resource_name: intel.com/sriov_net
    vlan: 200
    ipam:
      type: static
      addresses:
        - address: 10.30.0.10/24
          gateway: 10.30.0.1

- name: A raw CNI config (older OpenShift Virtualization bridge plugin)
  virtops.kubevirt.network:
    name: legacy-net
    namespace: demo
    config:
      cniVersion: 0.3.1
      name: legacy-net
      type: cnv-bridge
      bridge: br0
      macspoofchk: true

- name: Delete a network
  virtops.kubevirt.network:
    name: lab-net
    namespace: demo
    state: absent
"""

RETURN = r"""
changed:
  description: Whether the NetworkAttachmentDefinition was created, changed or deleted (would be, in check mode).
  returned: always
  type: bool
method:
  description: What was done - V(create), V(apply), V(delete) or V(none).
  returned: success
  type: str
network:
  description: The NetworkAttachmentDefinition after the task; null after deletion.
  returned: success
  type: dict
config:
  description: Its CNI config, parsed.
  returned: when O(state=present)
  type: dict
  sample: {cniVersion: 0.3.1, name: br1-net, type: bridge, bridge: br1, vlan: 100,
           ipam: {type: host-local, subnet: 192.168.10.0/24}}
resource_name:
  description: The C(k8s.v1.cni.cncf.io/resourceName) annotation set (null when none applies).
  returned: when O(state=present)
  type: str
  sample: bridge.network.kubevirt.io/br1
diff:
  description: Before and after, without server-owned fields, with the config parsed.
  returned: in diff mode
  type: dict
api_requests:
  description: Number of HTTP requests the task sent to the API server.
  returned: always
  type: int
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.virtops.kubevirt.plugins.module_utils.runner import run_module
from ansible_collections.virtops.kubevirt.plugins.module_utils.workflows.network import (
    MUTUALLY_EXCLUSIVE,
    NetworkRunner,
    argument_spec,
)


def main():
    module = AnsibleModule(argument_spec=argument_spec(), mutually_exclusive=MUTUALLY_EXCLUSIVE,
                           supports_check_mode=True)
    run_module(module, NetworkRunner)


if __name__ == "__main__":
    main()
