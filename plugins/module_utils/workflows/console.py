# -*- coding: utf-8 -*-
# Copyright: virtops.kubevirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The console module: the serial console (a session: log in, send lines, expect output), VNC (the
RFB handshake, or a screenshot saved to a file) or RDP (how to reach the guest) of a running VMI.
The protocols are in kubevirt/console.py; this is the task around them.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile

from ansible_collections.virtops.kubevirt.plugins.module_utils import runner
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s import resources as res
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.errors import ApiError, KubevirtError, one_line
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt import console as con


class ConsoleRunner(runner.Runner):
    reports_progress = False

    @classmethod
    def before_connect(cls, module):
        cls.check_target(module.params)
        check_options(module.params)

    def run(self):
        """The console task, given the validated params; -> (result, None)."""
        from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt import guest

        client, params, check_mode = self.client, self.params, self.check_mode
        name = params["name"]
        namespace = params.get("namespace") or client.namespace
        ctype = params.get("type") or "serial"
        timeout = float(60 if params.get("timeout") is None else params["timeout"])  # > 0: runner.check_timeout
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
            if params.get("screenshot"):
                data, width, height = con.screenshot(client, namespace, name)
                result["screenshot"], result["changed"] = save_screenshot(params["screenshot"], data, width, height,
                                                                          check_mode)
                if check_mode and result["changed"]:
                    result["msg"] = "Check mode: the screenshot of %s would be written to %s." % (
                        ref, result["screenshot"]["path"])
                return result, None
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


def check_options(params):
    """What needs no cluster: options of another console type, regular expressions, and where the
    screenshot goes (checked before anything is read)."""
    ctype = params.get("type") or "serial"
    serial_only = ("send", "expect", "login", "prompt", "logout")
    for option in serial_only if ctype != "serial" else ():
        if params.get(option):
            raise KubevirtError("%s is used only with type: serial (type is %s)." % (option, ctype))
    if params.get("screenshot") is not None and ctype != "vnc":
        raise KubevirtError("screenshot is used only with type: vnc (type is %s)." % ctype)
    for option in ("expect", "prompt"):
        if params.get(option):
            try:
                re.compile(params[option])
            except re.error as exc:
                raise KubevirtError("%s %r is not a valid regular expression: %s." % (option, params[option], exc))
    if params.get("screenshot") is not None:
        screenshot_path(params["screenshot"])


def screenshot_path(path):
    """The absolute path the screenshot is written to; one sentence when it can't be written there."""
    if not path or not str(path).strip():
        raise KubevirtError("screenshot must be the path of a file, got an empty string.")
    path = os.path.abspath(path)
    parent = os.path.dirname(path)
    if os.path.isdir(path):
        raise KubevirtError("screenshot %s is a directory; give the path of a file in it." % path)
    if not os.path.isdir(parent):
        raise KubevirtError("screenshot %s can't be written: the directory %s does not exist; create it first."
                            % (path, parent))
    if not os.access(parent, os.W_OK | os.X_OK):
        raise KubevirtError("screenshot %s can't be written: the directory %s is not writable by this user."
                            % (path, parent))
    return path


def save_screenshot(path, data, width, height, check_mode):
    """Write the PNG to ``path`` unless the file holds it already -> (its summary, changed).

    A temporary file in the same directory renamed over the old one: a reader never sees half an
    image, and a failed write leaves the old file as it was. Check mode writes nothing."""
    path = screenshot_path(path)
    summary = {"path": path, "width": width, "height": height, "bytes": len(data),
               "sha256": hashlib.sha256(data).hexdigest()}
    try:
        with open(path, "rb") as old:
            if old.read(len(data) + 1) == data:
                return summary, False
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise KubevirtError("screenshot %s can't be read to compare it: %s." % (path, exc.strerror or exc))
    if check_mode:
        return summary, True
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".%s." % os.path.basename(path), suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise KubevirtError("screenshot %s could not be written: %s." % (path, exc.strerror or exc))
    return summary, True


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
