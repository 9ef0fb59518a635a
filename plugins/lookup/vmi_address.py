# -*- coding: utf-8 -*-
# Copyright: virtops.kubevirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: vmi_address
short_description: The IP address of a running KubeVirt VM on a network, optionally waiting for it
version_added: 0.1.0
author:
  - virtops.kubevirt developers (!UNKNOWN)
description:
  - Returns the IP address of each named VM (its VMI) on O(network) - by default its first network, which is
    the pod network for most VMs - as KubeVirt reports it in the VMI's C(status.interfaces).
  - With O(wait=true) it waits (one watch for all names) until every VMI has an address there, up to O(timeout).
  - Fails with a clear message when the VM is not running or has no address on that network.
  - Connection options are those of M(kubernetes.core.k8s) and its C(K8S_AUTH_*) environment variables.
  - A keyword not documented here is an error that names it (Ansible itself would silently drop it).
extends_documentation_fragment:
  - virtops.kubevirt.auth
options:
  _terms:
    description: Names of VMs (or stand-alone VMIs).
    type: list
    elements: str
    required: true
  namespace:
    description: Namespace. Defaults to the kubeconfig context's namespace.
    type: str
  network:
    description:
      - Name of the network in the VM spec (C(spec.template.spec.networks[].name)), for example V(default) or
        V(br1). Defaults to the VM's first network.
    type: str
    aliases: [network_name]
  all_addresses:
    description: Return every address on the network (a list) instead of the first one.
    type: bool
    default: false
  wait:
    description: Wait until each VMI has an address on the network.
    type: bool
    default: false
  timeout:
    description: Seconds to wait with O(wait); a positive number.
    type: int
    default: 120
notes:
  - For bridged (non-masquerade) interfaces KubeVirt learns the guest's IP from the guest agent.
"""

EXAMPLES = r"""
- name: The pod-network IP of web-1
  ansible.builtin.debug:
    msg: "{{ lookup('virtops.kubevirt.vmi_address', 'web-1', namespace='demo') }}"

- name: Wait up to 5 minutes for the IP on the Multus network br1 and add the VM to the play
  ansible.builtin.add_host:
    name: web-1
    ansible_host: "{{ lookup('virtops.kubevirt.vmi_address', 'web-1', namespace='demo', network='br1',
                             wait=true, timeout=300) }}"

- name: IPs of several VMs as a list
  ansible.builtin.set_fact:
    ips: "{{ query('virtops.kubevirt.vmi_address', 'web-1', 'web-2', namespace='demo') }}"
"""

RETURN = r"""
_list:
  description: One IP address per name (a list of addresses per name with O(all_addresses=true)).
  type: list
  elements: raw
"""

from ansible.plugins.lookup import LookupBase

from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.client import connect
from ansible_collections.virtops.kubevirt.plugins.module_utils.readers.lookups import (
    auth_params,
    names_from_terms,
    vmi_addresses,
)
from ansible_collections.virtops.kubevirt.plugins.plugin_utils.lookup import run_lookup, set_lookup_options


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        set_lookup_options(self, variables, kwargs)
        opt = self.get_option
        return run_lookup(lambda: connect(auth_params(opt)), self._display.warning, lambda client: vmi_addresses(
            client, names_from_terms(terms), namespace=opt("namespace"), network=opt("network"), wait=opt("wait"),
            timeout=opt("timeout"), all_addresses=opt("all_addresses")))
