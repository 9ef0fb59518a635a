"""The serial console example of docs/consoles-and-inventory.md, run as written against a lab VM: its
`expect` captures the address of the guest's own interface, not the loopback's 127.0.0.1 (issue 14).

The example's tasks are read from the page (the first YAML block of "## Serial console"); only the VM's
namespace is this test's, and `vm_password` is the VM's cloud-init password.
"""
import re
import uuid
from pathlib import Path

import yaml

from ansible_run import ansible_env, run_playbook

REPO = Path(__file__).resolve().parents[2]
PAGE = REPO / "docs" / "consoles-and-inventory.md"


def documented_example():
    section = PAGE.read_text().split("## Serial console", 1)[1]
    block = re.search(r"```yaml\n(.*?)```", section, re.S).group(1)
    return yaml.safe_load(block)


def test_the_documented_expect_captures_the_guests_address(namespace, kubeconfig, tmp_path):
    example = documented_example()
    console = example[0]["virtops.kubevirt.console"]
    assert console["name"] == "web1" and console["send"][-1].startswith("ip ")
    console["namespace"] = namespace
    password = "Doc-%s" % uuid.uuid4().hex[:8]
    tasks = [{"name": "the VM of the example", "virtops.kubevirt.vm": {
        "name": "web1", "namespace": namespace, "memory": "1Gi",
        "disks": [{"name": "root", "image": "quay.io/containerdisks/fedora:41"}],
        "cloud_init": {"user": "fedora", "password": "{{ vm_password }}"}, "wait": True, "wait_timeout": 120}},
        {"name": "its VMI", "virtops.kubevirt.vmi_info": {"name": "web1", "namespace": namespace},
         "register": "vmi"}]
    tasks += example
    tasks.append({"name": "the address is the guest's interface's, as ip printed it", "ansible.builtin.assert": {
        "quiet": True, "that": [
            "con.named_groups.ip != '127.0.0.1'",
            "con.named_groups.ip is match('^[0-9]+[.][0-9]+[.][0-9]+[.][0-9]+$')",
            # masquerade: the guest's side of KubeVirt's NAT; bridge: the VMI's own address
            "con.named_groups.ip in ['10.0.2.2'] + vmi.summaries[0].ip_addresses",
            "con.outputs[1].output is search('inet ' ~ con.named_groups.ip ~ '/[0-9]+ .*scope global')",
            "con.outputs[0].output == 'web1'"]}})
    plays = [{"hosts": "localhost", "gather_facts": False, "vars": {"vm_password": password}, "tasks": tasks}]
    proc = run_playbook(tmp_path, plays, env=ansible_env(kubeconfig))
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert re.search(r'"msg": "web1 has 10\.0\.2\.2"|"msg": "web1 has \d+\.\d+\.\d+\.\d+"', proc.stdout)
    assert "web1 has 127.0.0.1" not in proc.stdout
