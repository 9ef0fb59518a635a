# -*- coding: utf-8 -*-
# Copyright: virtops.kubevirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: vm
short_description: Read KubeVirt VirtualMachines or VirtualMachineInstances in templates
version_added: 0.1.0
author:
  - virtops.kubevirt developers (!UNKNOWN)
description:
  - Returns one entry per VM (or VMI) - the object, or its summary with O(summary=true) - optionally reduced with
    a JMESPath O(query).
  - Terms are names (several terms, a list or a comma-separated string). Without names, every object in
    O(namespace) (all namespaces without it) that matches O(label_selector).
  - Cloud-init user data and passwords are redacted from the objects.
  - Connection options are those of M(kubernetes.core.k8s) and its C(K8S_AUTH_*) environment variables.
  - A keyword not documented here is an error that names it (Ansible itself would silently drop it).
extends_documentation_fragment:
  - virtops.kubevirt.auth
options:
  _terms:
    description: Names of VirtualMachines (or VMIs with O(kind=vmi)).
    type: list
    elements: str
    required: false
  namespace:
    description:
      - Namespace. With names it defaults to the kubeconfig context's namespace; without names, all namespaces.
    type: str
  kind:
    description: V(vm) for VirtualMachines, V(vmi) for VirtualMachineInstances.
    type: str
    choices: [vm, vmi]
    default: vm
  label_selector:
    description: Label selector, for example V(app=web,tier!=db).
    type: str
  query:
    description:
      - A JMESPath expression applied to each entry, for example V(status.printableStatus) or
        V(spec.template.spec.domain.memory.guest).
    type: str
  summary:
    description:
      - Return the summary M(virtops.kubevirt.vm_info) returns (status, ready, node, IPs per network, guest OS,
        reason...) instead of the object. Reads the VMIs, launcher pods and warning events too.
    type: bool
    default: false
  allow_missing:
    description: Return V(null) for a name that does not exist instead of failing.
    type: bool
    default: false
notes:
  - As with every lookup, C(lookup()) returns a single entry as is and joins several strings with commas;
    use C(query()) (or C(wantlist=true)) to always get a list.
"""

EXAMPLES = r"""
- name: The printable status of one VM
  ansible.builtin.debug:
    msg: "{{ lookup('virtops.kubevirt.vm', 'web-1', namespace='demo', query='status.printableStatus') }}"

- name: Names of the VMs labelled app=web
  ansible.builtin.debug:
    msg: "{{ query('virtops.kubevirt.vm', namespace='demo', label_selector='app=web', query='metadata.name') }}"

- name: Node and IPs of two VMs, from their summaries
  ansible.builtin.set_fact:
    placement: "{{ query('virtops.kubevirt.vm', 'web-1', 'web-2', namespace='demo', summary=true,
                         query='{name: name, node: node, ips: ip_addresses}') }}"

- name: Does the VM exist?
  ansible.builtin.set_fact:
    exists: "{{ lookup('virtops.kubevirt.vm', 'web-9', namespace='demo', allow_missing=true) is not none }}"
"""

RETURN = r"""
_list:
  description: One entry per object - the object, its summary, or the O(query) result (null for a missing name).
  type: list
  elements: raw
"""

from ansible.plugins.lookup import LookupBase

from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.client import connect
from ansible_collections.virtops.kubevirt.plugins.module_utils.readers.lookups import auth_params, names_from_terms, vm_lookup
from ansible_collections.virtops.kubevirt.plugins.plugin_utils.lookup import run_lookup, set_lookup_options


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        set_lookup_options(self, variables, kwargs)
        opt = self.get_option
        return run_lookup(lambda: connect(auth_params(opt)), self._display.warning, lambda client: vm_lookup(
            client, names_from_terms(terms), namespace=opt("namespace"), kind=opt("kind"),
            label_selector=opt("label_selector"), query=opt("query"), summary=opt("summary"),
            allow_missing=opt("allow_missing")))
