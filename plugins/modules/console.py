#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: virtops.kubevirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: console
short_description: Use the serial console of a KubeVirt VM, check or screenshot its VNC display, or get its RDP details
version_added: 0.1.0
author:
  - virtops.kubevirt developers (!UNKNOWN)
description:
  - V(serial) opens the VM's serial console (virt-api's C(console) websocket, as C(virtctl console) does),
    optionally logs in, sends lines, waits for a regular expression and returns the transcript and the output of
    each line.
  - V(vnc) opens the VM's VNC display (the C(vnc) websocket), completes the RFB handshake (version, security type
    None, ServerInit) and returns the display's size and name with what a person needs to connect
    (the websocket URL and the C(virtctl vnc) command line).
  - V(vnc) with O(screenshot) instead saves a PNG of the display to a file (virt-api's C(vnc/screenshot)
    subresource, as C(virtctl vnc screenshot) does) - for example the screen of a VM that does not boot.
  - V(rdp) opens nothing; it returns how to reach the Remote Desktop port 3389 of a Windows guest - a
    LoadBalancer or NodePort Service in front of it, else the address the guest agent reports, and the
    C(virtctl port-forward) command line. See C(docs/consoles-and-inventory.md).
  - The VM (or stand-alone VMI) must be running; otherwise the task fails saying so.
  - The task never changes cluster objects. It reports C(changed=false), except that writing O(screenshot) reports
    C(changed=true) when the file did not hold that image before. Lines sent to a shell can change the guest, so
    use C(changed_when) for those.
extends_documentation_fragment:
  - virtops.kubevirt.auth
options:
  name:
    description:
      - Name of the VirtualMachine (or of a stand-alone VirtualMachineInstance).
    type: str
    required: true
    aliases: [vm]
  namespace:
    description:
      - Namespace. Defaults to the kubeconfig context's namespace.
    type: str
  type:
    description:
      - Which console.
    type: str
    choices: [serial, vnc, rdp]
    default: serial
  login:
    description:
      - Log in on the serial console when it shows a login prompt (nothing is typed when a shell is already open).
      - The password is never part of the transcript or any other result.
    type: dict
    suboptions:
      user:
        description: User name.
        type: str
        required: true
      password:
        description: Password.
        type: str
  logout:
    description:
      - Type C(exit) at the end so no shell is left open on the console.
      - Defaults to V(true) when the task logged in.
    type: bool
  send:
    description:
      - Lines to type on the serial console, in order. After each line the task waits for the shell prompt
        (O(prompt)) and records the line's output in RV(outputs).
      - Not sent in check mode.
    type: list
    elements: str
    default: []
  expect:
    description:
      - A Python regular expression to wait for, in what the sent lines printed (or, without O(send),
        anywhere on the console). Its match is RV(matched), its groups RV(groups) and RV(named_groups).
      - Without it and without O(send), the task returns what the console shows within a few seconds.
    type: str
  prompt:
    description:
      - Regular expression of the shell prompt, matched at the end of the output.
      - The default matches a last line ending in C($), C(#), C(>) or C(%), for example C([fedora@web1 ~]$ ).
    type: str
  screenshot:
    description:
      - With O(type=vnc), the path of a file to save a PNG screenshot of the VM's display to, instead of checking the
        display with the RFB handshake. It is written on the host the task runs on (the controller for
        C(hosts=localhost) or C(delegate_to=localhost)); use an absolute path.
      - The directory must exist. The file is replaced atomically (a temporary file renamed over it) with mode
        C(0644), and only when its content changes, so a second run with the same screen reports C(changed=false).
      - The task checks that virt-api's answer is a whole PNG (signature, IHDR chunk, IEND at the end) before
        writing anything.
      - The screen is taken as it is (C(moveCursor=false)); no input reaches the guest, so a blanked screen stays
        blank.
    type: path
  timeout:
    description:
      - Seconds to wait for each prompt, for O(expect) and for the VNC handshake; a positive number.
    type: int
    default: 60
  rdp_port:
    description:
      - The guest's RDP port, for O(type=rdp).
    type: int
    default: 3389
attributes:
  check_mode:
    description:
      - With O(send) or O(login) nothing is typed in check mode; the task only checks that the VM runs.
        Read-only uses (O(expect) alone, V(vnc), V(rdp)) run as usual.
      - With O(screenshot) the screenshot is taken and compared with the file, but nothing is written; C(changed)
        says whether it would be.
    support: full
  diff_mode:
    description: Nothing in the cluster changes; a screenshot is binary, so no diff is shown for it.
    support: none
notes:
  - KubeVirt allows one serial console connection per VMI at a time; an open C(virtctl console) session is
    disconnected by this task.
  - Needs C(get) on C(virtualmachineinstances/console) (serial) or C(virtualmachineinstances/vnc) (vnc) in the
    C(subresources.kubevirt.io) API group, and C(get) on C(virtualmachineinstances).
  - O(screenshot) needs C(get) on C(virtualmachineinstances/vnc) as well - the API server authorizes the
    C(vnc/screenshot) path as the C(vnc) subresource. KubeVirt's C(kubevirt.io:edit) and C(kubevirt.io:admin)
    roles also list C(virtualmachineinstances/vnc/screenshot); a Role that lists only that does not allow it.
  - virt-api takes the screenshot over a VNC connection of its own, so a VNC viewer open on the VM at that moment
    is disconnected (KubeVirt serves one VNC connection per VMI).
requirements:
  - websocket-client >= 1.7 (for V(serial) and V(vnc) without O(screenshot))
seealso:
  - module: virtops.kubevirt.vm_power
  - module: virtops.kubevirt.guest_info
"""

EXAMPLES = r"""
- name: Log in on the serial console and run hostname
  virtops.kubevirt.console:
    name: web1
    namespace: demo
    login:
      user: fedora
      password: "{{ vm_password }}"
    send:
      - hostname
  register: con

- name: Use the output of the first line
  ansible.builtin.assert:
    that: con.outputs[0].output == 'web1'

- name: Wait until the guest has booted to a login prompt
  virtops.kubevirt.console:
    name: web1
    namespace: demo
    expect: 'login: ?$'
    timeout: 300

- name: Read the guest's IPv4 address from its console
  virtops.kubevirt.console:
    name: web1
    namespace: demo
    login:
      user: fedora
      password: "{{ vm_password }}"
    send:
      - ip -4 addr show eth0
    expect: 'inet (?P<ip>[0-9.]+)/'
  register: con

- name: Check the VNC display and show how to open it
  virtops.kubevirt.console:
    name: web1
    namespace: demo
    type: vnc
  register: vnc

- ansible.builtin.debug:
    msg: "{{ vnc.vnc.width }}x{{ vnc.vnc.height }} - open it with: {{ vnc.virtctl }}"

- name: Save what the VM's screen shows
  virtops.kubevirt.console:
    name: web1
    namespace: demo
    type: vnc
    screenshot: "{{ playbook_dir }}/screens/web1.png"
  register: shot

- ansible.builtin.debug:
    msg: "{{ shot.screenshot.width }}x{{ shot.screenshot.height }} PNG saved to {{ shot.screenshot.path }}"

- name: How to reach the Remote Desktop of a Windows VM
  virtops.kubevirt.console:
    name: win2022
    namespace: demo
    type: rdp
  register: rdp
"""

RETURN = r"""
type:
  description: The console used.
  returned: always
  type: str
vmi:
  description: The running VMI - C(name), C(namespace), C(node), C(phase).
  returned: success
  type: dict
transcript:
  description:
    - Everything the serial console printed during the task, with line endings normalised and terminal escape
      sequences removed. The login password is replaced by C(********) wherever it would appear.
  returned: O(type=serial) and not skipped by check mode
  type: str
outputs:
  description: One entry per O(send) line - C(line) and its C(output) (without the echo and the next prompt).
  returned: O(type=serial)
  type: list
  elements: dict
  sample: [{"line": "hostname", "output": "web1"}]
matched:
  description: The text O(expect) matched (null without O(expect)).
  returned: O(type=serial)
  type: str
groups:
  description: The groups of the O(expect) match.
  returned: O(type=serial)
  type: list
  elements: str
named_groups:
  description: The named groups of the O(expect) match.
  returned: O(type=serial)
  type: dict
logged_in:
  description: Whether the task logged in.
  returned: O(type=serial)
  type: bool
vnc:
  description:
    - What the VNC server said in the handshake - C(width), C(height), C(name), C(pixel_format),
      C(protocol_version) (agreed), C(server_version), C(security_types) (offered), C(security_type) (used).
  returned: O(type=vnc) without O(screenshot)
  type: dict
  sample: {"width": 1280, "height": 800, "name": "demo_web1", "protocol_version": "3.8"}
rdp:
  description:
    - How to reach the guest's RDP port - C(host), C(port), C(source) (C(service:<ns>/<name>) or
      C(network:<name>)), C(windows) (whether the guest looks like Windows), C(agent_connected),
      C(port_forward) (a C(virtctl port-forward) command line), C(expose) (a C(virtctl expose) command line that
      creates a NodePort Service), and C(hints).
  returned: O(type=rdp)
  type: dict
screenshot:
  description:
    - The PNG saved (or, in check mode, the one that would be saved) - C(path) (absolute), C(width) and C(height)
      in pixels, C(bytes), and C(sha256) of the image.
  returned: O(type=vnc) with O(screenshot)
  type: dict
  sample: {"path": "/home/ops/screens/web1.png", "width": 1280, "height": 800, "bytes": 23170,
           "sha256": "9b74c9897bac770ffc029102a200c5de5ac3d3a4ab5e0c4e4b5a2d1f0e3c6b7a"}
websocket_url:
  description: The websocket URL of the console (it needs the same credentials as the API).
  returned: O(type=serial) or O(type=vnc)
  type: str
virtctl:
  description: The C(virtctl) command line that opens this console for a person.
  returned: always
  type: str
  sample: virtctl vnc web1 -n demo
virtctl_proxy:
  description: The C(virtctl vnc --proxy-only) command line that serves the display to any VNC viewer on a local port.
  returned: O(type=vnc)
  type: str
msg:
  description: What check mode skipped.
  returned: in check mode with O(send) or O(login), or with a O(screenshot) that would change the file
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.virtops.kubevirt.plugins.module_utils import runner
from ansible_collections.virtops.kubevirt.plugins.module_utils.runner import run_module
from ansible_collections.virtops.kubevirt.plugins.module_utils.workflows.console import ConsoleRunner


def argument_spec():
    spec = dict(
        name=dict(type="str", required=True, aliases=["vm"]),
        namespace=dict(type="str"),
        type=dict(type="str", choices=["serial", "vnc", "rdp"], default="serial"),
        login=dict(type="dict", options=dict(
            user=dict(type="str", required=True),
            password=dict(type="str", no_log=True),
        )),
        logout=dict(type="bool"),
        send=dict(type="list", elements="str", default=[]),
        expect=dict(type="str"),
        prompt=dict(type="str"),
        timeout=dict(type="int", default=60),
        rdp_port=dict(type="int", default=3389),
        screenshot=dict(type="path"),
    )
    spec.update(runner.auth_spec())
    return spec


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    run_module(module, ConsoleRunner)


if __name__ == "__main__":
    main()
