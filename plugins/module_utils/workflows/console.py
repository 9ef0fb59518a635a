# -*- coding: utf-8 -*-
# Copyright: virtops.kubevirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The console module: the serial console (a session: log in, send lines, expect output), VNC (the
RFB handshake) or RDP (how to reach the guest) of a running VMI. The protocols are in
kubevirt/console.py; this is the task around them.
"""

from __future__ import annotations

import re

from ansible_collections.virtops.kubevirt.plugins.module_utils import runner
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s import resources as res
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.errors import ApiError, KubevirtError, one_line
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt import console as con


class ConsoleRunner(runner.Runner):
    reports_progress = False

    @classmethod
    def before_connect(cls, module):
        cls.check_target(module.params)

    def run(self):
        """The console task, given the validated params; -> (result, None)."""
        from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt import guest

        client, params, check_mode = self.client, self.params, self.check_mode
        name = params["name"]
        namespace = params.get("namespace") or client.namespace
        ctype = params.get("type") or "serial"
        timeout = float(60 if params.get("timeout") is None else params["timeout"])  # > 0: runner.check_timeout
        if ctype != "serial":
            for option in ("send", "expect", "login", "prompt", "logout"):
                if params.get(option):
                    raise KubevirtError("%s is used only with type: serial (type is %s)." % (option, ctype))
        for option in ("expect", "prompt"):
            if params.get(option):
                try:
                    re.compile(params[option])
                except re.error as exc:
                    raise KubevirtError("%s %r is not a valid regular expression: %s." % (option, params[option], exc))
        vmi = guest.running_vmi(client, namespace, name)
        ref = "VMI %s/%s" % (namespace, name)
        result = {"changed": False, "type": ctype, "vmi": guest.vmi_brief(vmi)}
        if ctype == "rdp":
            result["rdp"] = rdp_details(client, vm_or_none(client, namespace, name), vmi, params.get("rdp_port") or 3389)
            result["virtctl"] = result["rdp"]["port_forward"]
            return result, None
        result["websocket_url"] = con.websocket_url(client.host, namespace, name, "console" if ctype == "serial" else "vnc")
        if ctype == "vnc":
            result["virtctl"] = con.virtctl_command("vnc", name, namespace)
            result["virtctl_proxy"] = "virtctl vnc %s -n %s --proxy-only --port 5900" % (name, namespace)
            stream = con.open_stream(client, namespace, name, "vnc", timeout=timeout)
            try:
                result["vnc"] = con.rfb_handshake(stream, timeout=timeout, ref=ref)
            finally:
                stream.close()
            return result, None
        result["virtctl"] = con.virtctl_command("console", name, namespace)
        login = params.get("login") or None
        if check_mode and (params.get("send") or login):
            result["msg"] = ("Check mode: the serial console of %s was not opened, because logging in and sending lines "
                             "types into the guest; the VM is running." % ref)
            result.update(outputs=[], matched=None, groups=[], named_groups={}, logged_in=False)
            return result, None
        stream = con.open_stream(client, namespace, name, "console", timeout=min(timeout, 30.0))
        try:
            result.update(con.serial_session(stream, ref, send=params.get("send"), expect=params.get("expect"), login=login,
                                             prompt=params.get("prompt"), timeout=timeout, logout=params.get("logout")))
        finally:
            stream.close()
        return result, None


def vm_or_none(client, namespace, name):
    try:
        return client.get_or_none(res.VM, name, namespace)
    except ApiError:
        return None


def rdp_details(client, vm, vmi, port=3389):
    """RDP connection details for a running VMI (reads Services and the node, best effort)."""
    from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt import access
    from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt.state import agent_connected

    meta = vmi.get("metadata") or {}
    name, namespace = meta.get("name"), meta.get("namespace")
    hints = []
    try:
        services = client.list(res.BY_KIND["Service"], namespace).get("items") or []
    except ApiError as exc:
        services = []
        hints.append("Services in %s could not be read (%s)." % (namespace, one_line(exc.api_message or exc, 150)))
    node_name = (vmi.get("status") or {}).get("nodeName")
    nodes = {}
    if node_name and any((s.get("spec") or {}).get("type") == "NodePort" for s in services):
        try:
            nodes[node_name] = client.get(res.BY_KIND["Node"], node_name)
        except ApiError:
            pass  # no permission on nodes: the node name is used as the address
    where = access.reach(vm, vmi, services, nodes, use_service=True, wanted_ports=(port,))
    host, source = where["host"], where["source"]
    rport = where["port"] or port
    windows = access.is_windows(vm, vmi)
    agent = agent_connected(vmi)
    if not windows:
        hints.append("The guest does not look like Windows (guest agent OS, preference or vm.kubevirt.io/os "
                     "annotation); RDP needs an RDP server in the guest.")
    if not agent:
        hints.append("The guest agent is not connected: without it KubeVirt reports no guest IP for bridged "
                     "interfaces; install the QEMU guest agent (virtio-win) in the guest.")
    if not source or not source.startswith("service:"):
        hints.append("No LoadBalancer or NodePort Service targets port %d of this VM; the address is reachable "
                     "only from inside the cluster network. Create one with the expose command, or use "
                     "port_forward." % port)
    return {
        "host": host,
        "port": rport if host else None,
        "source": source,
        "windows": windows,
        "agent_connected": agent,
        "port_forward": "virtctl port-forward vmi/%s.%s %d:%d" % (name, namespace, port, port),
        "expose": "virtctl expose vmi %s -n %s --name %s-rdp --type NodePort --port %d --target-port %d" % (
            name, namespace, name, port, port),
        "hints": hints,
    }
