# -*- coding: utf-8 -*-
# Copyright: virtops.kubevirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: kubevirt
short_description: KubeVirt VirtualMachines (running and stopped) and stand-alone VMIs as Ansible hosts
version_added: 0.1.0
author:
  - virtops.kubevirt developers (!UNKNOWN)
description:
  - Makes one host per C(VirtualMachine) - running or stopped - and per stand-alone C(VirtualMachineInstance),
    from one or more clusters (O(connections)), namespaces and label selectors.
  - Groups hosts by cluster, namespace, label, node, printable status and guest OS (O(group_by)), and supports
    O(compose), O(groups) and O(keyed_groups) like the C(constructed) plugin.
  - Sets C(ansible_host) from a chosen network (O(connections[].network_name)), else from a LoadBalancer or
    NodePort Service in front of the guest's SSH (22) or WinRM (5986/5985) port, else the IP of the VM's first
    network when the controller can reach it, else SSH goes through KubeVirt's port-forward (a C(ProxyCommand),
    no Service and no route needed); O(access) chooses. Windows guests get C(ansible_connection=winrm).
  - Every host has a compact C(kubevirt) variable - status, readiness, node, IPs per network, guest OS, labels,
    where C(ansible_host) came from, and why it is not running when it is not.
  - A namespace the credentials may not read is skipped with a warning, not a failure.
  - The inventory file's name must end in C(kubevirt.yml) or C(kubevirt.yaml).
  - An option this plugin does not document is an error that names it (ansible-core itself would drop it).
    The options of the reference plugin C(kubevirt.core.kubevirt) mean the same here, or are refused with
    a sentence naming this plugin's equivalent (see C(docs/consoles-and-inventory.md)); only the O(plugin)
    line must change.
  - The connection options (O(host), O(api_key), O(kubeconfig), ...) at the top level, and O(name),
    O(namespaces), O(label_selector), O(network_name), O(use_service) and O(access), describe the one connection
    when there is no O(connections) list, and are the defaults of each O(connections) entry otherwise.
extends_documentation_fragment:
  - virtops.kubevirt.auth
  - constructed
  - inventory_cache
options:
  plugin:
    description: Marks this file as a source for this plugin.
    type: str
    required: true
    choices: [virtops.kubevirt.kubevirt]
  connections:
    description:
      - Clusters to read. Without it, one connection from the C(K8S_AUTH_*) environment variables, the
        in-cluster ServiceAccount or the default kubeconfig, reading every namespace the credentials may read.
      - Each connection takes the connection options of M(kubernetes.core.k8s) (C(kubeconfig), C(context), C(host),
        C(api_key), C(username), C(password), C(validate_certs), C(ca_cert), C(client_cert), C(client_key),
        C(proxy), C(no_proxy), C(proxy_headers), C(impersonate_user), C(impersonate_groups), C(persist_config)),
        which fall back to the same C(K8S_AUTH_*) environment variables, plus the keys below.
    type: list
    elements: dict
    suboptions:
      name:
        description:
          - Name of the cluster, used in the C(cluster_<name>) group and in O(host_format) as C({cluster}).
          - Defaults to O(name), else the API server address, for example C(api-example-com_6443).
        type: str
      namespaces:
        description:
          - Namespaces to read. Defaults to O(namespaces); without either, all namespaces (one request per kind
            when the credentials may list across namespaces, else every namespace they may list).
        type: list
        elements: str
      label_selector:
        description:
          - Label selector for VMs (their own labels) and stand-alone VMIs, for example V(app=web).
          - Defaults to O(label_selector).
        type: str
      network_name:
        description:
          - Take C(ansible_host) from the VM's IP on this network (the name in C(spec.template.spec.networks)),
            for example a Multus bridge network. Hosts without an IP there get no C(ansible_host).
          - Defaults to O(network_name).
        type: str
        aliases: [interface_name]
      use_service:
        description: Look for LoadBalancer/NodePort Services in front of the guest. Defaults to O(use_service).
        type: bool
      access:
        description: How the hosts of this connection are reached (see O(access)). Defaults to O(access).
        type: str
        choices: [auto, network, service, portforward]
      kubeconfig:
        description: Path to a kubeconfig (or the kubeconfig as a dict).
        type: raw
      context:
        description: Kubeconfig context.
        type: str
      host:
        description: API server URL.
        type: str
      api_key:
        description: Bearer token.
        type: str
      username:
        description: Basic auth user.
        type: str
      password:
        description: Basic auth password.
        type: str
      validate_certs:
        description: Verify the API server's certificate (on unless V(false)).
        type: bool
        aliases: [verify_ssl]
      ca_cert:
        description: CA certificate file.
        type: path
        aliases: [ssl_ca_cert]
      client_cert:
        description: Client certificate file.
        type: path
        aliases: [cert_file]
      client_key:
        description: Client key file.
        type: path
        aliases: [key_file]
      proxy:
        description: HTTP proxy URL.
        type: str
      no_proxy:
        description: Hosts reached without the proxy.
        type: str
      proxy_headers:
        description: Proxy headers (C(proxy_basic_auth), C(basic_auth), C(user_agent)).
        type: dict
      impersonate_user:
        description: User to act as.
        type: str
      impersonate_groups:
        description: Groups to act as.
        type: list
        elements: str
      persist_config:
        description: Save refreshed tokens of exec/auth-provider users back to the kubeconfig.
        type: bool
  name:
    description:
      - Default of O(connections[].name); with several O(connections) each needs its own name instead.
    type: str
  namespaces:
    description:
      - Default of O(connections[].namespaces) (as in C(kubevirt.core.kubevirt)). Without it, all namespaces
        the credentials may read.
    type: list
    elements: str
  label_selector:
    description: Default of O(connections[].label_selector) (as in C(kubevirt.core.kubevirt)).
    type: str
  host_format:
    description:
      - Host name pattern, with the fields C({namespace}), C({name}), C({uid}), C({cluster}) and C({kind})
        (C(virtualmachine) or C(virtualmachineinstance)).
    type: str
    default: "{namespace}-{name}"
  network_name:
    description: Default of O(connections[].network_name).
    type: str
    aliases: [interface_name]
  use_service:
    description: Default of O(connections[].use_service).
    type: bool
    default: true
  access:
    description:
      - How each host is reached; the host's C(kubevirt.access) says which way was chosen.
      - V(auto) - a network address the controller can reach, else KubeVirt's port-forward. In order the IP on
        O(network_name); a LoadBalancer or NodePort Service (with O(use_service)); the IP of the VM's first network
        when that is a secondary (Multus) network, or the pod network and the inventory runs inside the cluster
        (the in-cluster ServiceAccount, as in an AWX execution environment on the same cluster); otherwise the
        port-forward. Windows guests (WinRM) never fall back to the port-forward; they get the address as with
        V(network) then V(service).
      - V(network) - the IP on O(network_name), else on the VM's first network; no Services, no port-forward.
      - V(service) - a LoadBalancer or NodePort Service only.
      - V(portforward) - always SSH through KubeVirt's port-forward (C(virtualmachines/NAME/portforward/PORT),
        what C(virtctl port-forward --stdio) uses), resolved when SSH connects, so it works for VMs that were
        stopped when the inventory was read and need neither a Service nor a route to the pod network.
        The host gets C(ansible_connection=ssh), C(ansible_host=vm.NAME.NAMESPACE) (C(vmi.NAME.NAMESPACE) for a
        stand-alone VMI; virtctl ssh's host name) and C(ansible_ssh_common_args) with a C(ProxyCommand) that runs
        this collection's C(plugins/plugin_utils/ssh_proxy.py) with the inventory's Python and the connection's
        non-secret settings (kubeconfig, context, host, ca_cert, client certificate paths, impersonation); a token
        or password comes from the environment (C(K8S_AUTH_API_KEY)...) or the kubeconfig when SSH connects.
        C(ansible_port) (default 22) is the guest's port. Windows guests need OpenSSH Server then, and get
        C(ansible_shell_type=powershell).
    type: str
    choices: [auto, network, service, portforward]
    default: auto
  include_stopped:
    description:
      - Make hosts of stopped VMs too; they are in the C(status_stopped) group. They have no C(ansible_host) unless
        they are reached by the port-forward (O(access)), which connects to whatever runs when SSH connects.
    type: bool
    default: true
  include_vmis:
    description: Make hosts of stand-alone VMIs (not owned by a VM).
    type: bool
    default: true
  group_by:
    description:
      - Which groups to make - V(cluster) (C(cluster_<name>)), V(namespace) (C(namespace_<ns>)), V(label)
        (C(label_<key>_<value>), without the labels KubeVirt sets itself), V(node) (C(node_<node>)), V(status)
        (C(status_<printable status>), for example C(status_running)), V(os) (C(os_<guest OS id>), for example
        C(os_fedora) or C(os_windows)). Names are lower case with other characters replaced by C(_).
    type: list
    elements: str
    choices: [cluster, namespace, label, node, status, os]
    default: [cluster, namespace, label, node, status, os]
  raw_objects:
    description:
      - Also set C(kubevirt_vm) and C(kubevirt_vmi), the whole objects (cloud-init data redacted), for
        O(compose) and O(keyed_groups) expressions that need more than the C(kubevirt) summary.
    type: bool
    default: false
notes:
  - The credentials need C(list) on C(virtualmachines) and C(virtualmachineinstances) (C(kubevirt.io)) and on
    C(services); C(list) on C(nodes) (cluster scope) is used for NodePort addresses when allowed, else the node
    name is the address.
  - C(ansible_host) from the pod network is reachable from inside the cluster network only; from outside, O(access)
    V(auto) uses KubeVirt's port-forward instead, which needs C(get) on C(virtualmachines/portforward) and
    C(virtualmachineinstances/portforward) in C(subresources.kubevirt.io) when SSH connects (docs/ssh-portforward.md).
requirements:
  - python >= 3.9
  - urllib3 and PyYAML
"""

EXAMPLES = r"""
# demo.kubevirt.yml - every VM the kubeconfig's user may see
plugin: virtops.kubevirt.kubevirt

# lab.kubevirt.yml - two namespaces, ansible_host from the Multus network br1
plugin: virtops.kubevirt.kubevirt
connections:
  - name: lab
    kubeconfig: ~/.kube/lab
    namespaces: [demo, web]
    network_name: br1
    label_selector: env=prod
keyed_groups:
  - key: kubevirt.guest_os.version_id | default('none')
    prefix: os_version
compose:
  ansible_user: "'fedora' if kubevirt.guest_os and kubevirt.guest_os.id == 'fedora' else 'cloud-user'"
groups:
  not_ready: not kubevirt.ready

# laptop.kubevirt.yml - every VM over SSH through KubeVirt's port-forward (no Service, no route)
plugin: virtops.kubevirt.kubevirt
namespaces: [demo]
access: portforward
compose:
  ansible_user: "'fedora'"

# awx.kubevirt.yml - token and CA from AWX's Kubernetes credential (K8S_AUTH_* variables), cached
plugin: virtops.kubevirt.kubevirt
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: /tmp/kubevirt-inventory
cache_timeout: 300
"""

import sys

from ansible.errors import AnsibleParserError
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable

from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.client import connect
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.connection import AUTH_ARG_SPEC
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.errors import KubevirtError
from ansible_collections.virtops.kubevirt.plugins.module_utils.readers import inventory as inv
from ansible_collections.virtops.kubevirt.plugins.module_utils.readers.lookups import clean_object
from ansible_collections.virtops.kubevirt.plugins.plugin_utils.options import documented_names
from ansible_collections.virtops.kubevirt.plugins.plugin_utils.ssh_proxy import script_path


class InventoryModule(BaseInventoryPlugin, Constructable, Cacheable):
    NAME = "virtops.kubevirt.kubevirt"

    def verify_file(self, path):
        return super().verify_file(path) and path.endswith(("kubevirt.yml", "kubevirt.yaml"))

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path, cache)
        config = self._read_config_data(path)
        try:
            inv.check_file_options(config, documented_names(self), path)
        except KubevirtError as exc:
            raise AnsibleParserError(str(exc))
        cache_key = self.get_cache_key(path)
        use_cache = self.get_option("cache") and cache
        update_cache = self.get_option("cache") and not cache
        result = None
        if use_cache:
            try:
                result = self._cache[cache_key]
            except KeyError:
                update_cache = True
        if result is None:
            try:
                result = self.fetch()
            except KubevirtError as exc:
                raise AnsibleParserError("virtops.kubevirt.kubevirt inventory %s: %s" % (path, exc))
        else:
            for warning in result.get("warnings") or []:
                self.display.warning("%s (cached)" % warning)
        if update_cache:
            self._cache[cache_key] = result
        self.populate(result["hosts"])

    def fetch(self):
        """Read every connection; returns {"hosts": [records], "warnings": [...]} (JSON-safe, cacheable)."""
        connections = self.get_option("connections")
        if connections is None:
            connections = [{}]
        if not isinstance(connections, list):
            raise KubevirtError("connections must be a list of mappings.")
        group_by = self.get_option("group_by")
        bad = [g for g in group_by or [] if g not in inv.GROUP_BY_CHOICES]
        if bad:
            raise KubevirtError("group_by %s is unknown; use %s." % (", ".join(bad), ", ".join(inv.GROUP_BY_CHOICES)))
        warnings = []

        def warn(text):
            warnings.append(text)
            self.display.warning(text)

        # The top-level connection options: the defaults of each entry.
        defaults = {key: self.get_option(key) for key in list(AUTH_ARG_SPEC) + list(inv.CONNECTION_OPTIONS)}
        if defaults["name"] and len(connections) > 1:
            raise KubevirtError("name %r at the top level would name all %d connections; give each entry of "
                                "connections its own name." % (defaults["name"], len(connections)))
        hosts = []
        seen = {}
        for index, raw in enumerate(connections):
            auth, opts = inv.normalize_connection(index, raw, defaults)
            client = connect(auth)
            for warning in client.warnings:
                warn(warning)
            cluster = opts.get("name") or inv.cluster_name(client.host)
            opts["pod_reachable"] = inv.in_cluster(client)
            data = inv.collect(client, opts, cluster, warn)
            records = inv.host_records(data, opts, host_format=self.get_option("host_format"), group_by=group_by,
                                       include_stopped=self.get_option("include_stopped"),
                                       include_vmis=self.get_option("include_vmis"),
                                       raw_objects=self.get_option("raw_objects"), redact=clean_object,
                                       proxy=(sys.executable, script_path(), auth))
            if any(r["vars"]["kubevirt"]["access"] == "portforward" for r in records):
                for text in inv.proxy_warnings(index, auth):
                    warn(text)
            for record in records:
                if record["name"] in seen:
                    warn("Host %s of %s has the same name as one of %s and replaces it; put {cluster} in host_format." % (
                        record["name"], cluster, seen[record["name"]]))
                seen[record["name"]] = cluster
            hosts.extend(records)
        return {"hosts": hosts, "warnings": warnings}

    def populate(self, records):
        strict = self.get_option("strict")
        for record in records:
            name = record["name"]
            self.inventory.add_host(name)
            for group in record["groups"]:
                self.inventory.add_group(group)
                self.inventory.add_child(group, name)
            for key, value in record["vars"].items():
                self.inventory.set_variable(name, key, value)
            hostvars = self.inventory.get_host(name).get_vars()
            self._set_composite_vars(self.get_option("compose"), hostvars, name, strict=strict)
            hostvars = self.inventory.get_host(name).get_vars()
            self._add_host_to_composed_groups(self.get_option("groups"), hostvars, name, strict=strict)
            self._add_host_to_keyed_groups(self.get_option("keyed_groups"), hostvars, name, strict=strict)
