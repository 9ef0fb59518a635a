import pytest

from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt import spec as vmspec
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.errors import InputError
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt import redact
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s import resources as res

BASE = {"memory": "1Gi"}


def tspec(params, name="vm1"):
    vm = vmspec.build_vm(dict(BASE, **params), name, "ns1", run_strategy="Always")
    return vm["spec"]["template"]["spec"]


def devices(params):
    return tspec(params)["domain"]["devices"]


# -- every option -> the fragment it builds -------------------------------------------------------
@pytest.mark.parametrize("params, path, expected", [
    ({"memory": "2Gi"}, ("domain", "memory"), {"guest": "2Gi"}),
    ({"memory": "1536Mi"}, ("domain", "memory"), {"guest": "1536Mi"}),
    ({"cpu": {"cores": 2}}, ("domain", "cpu"), {"cores": 2}),
    ({"cpu": {"cores": 2, "sockets": 1, "threads": 2, "model": "host-passthrough"}}, ("domain", "cpu"),
     {"cores": 2, "sockets": 1, "threads": 2, "model": "host-passthrough"}),
    ({"machine_type": "q35"}, ("domain", "machine"), {"type": "q35"}),
    ({"firmware": {"bootloader": "bios"}}, ("domain", "firmware"), {"bootloader": {"bios": {}}}),
    ({"firmware": {"bootloader": "efi"}}, ("domain", "firmware"), {"bootloader": {"efi": {"secureBoot": False}}}),
    ({"firmware": {"bootloader": "efi", "secure_boot": True}}, ("domain", "firmware"),
     {"bootloader": {"efi": {"secureBoot": True}}}),
    ({"firmware": {"bootloader": "efi", "secure_boot": True}}, ("domain", "features"), {"smm": {"enabled": True}}),
    ({"node_selector": {"zone": "a", "n": 1}}, ("nodeSelector",), {"zone": "a", "n": "1"}),
    ({"tolerations": [{"key": "k", "operator": "Exists"}]}, ("tolerations",), [{"key": "k", "operator": "Exists"}]),
    ({"affinity": {"nodeAffinity": {}}}, ("affinity",), {"nodeAffinity": {}}),
    ({"eviction_strategy": "LiveMigrate"}, ("evictionStrategy",), "LiveMigrate"),
    ({"termination_grace_period": 30}, ("terminationGracePeriodSeconds",), 30),
    ({"termination_grace_period": 0}, ("terminationGracePeriodSeconds",), 0),
    ({"hostname": "web"}, ("hostname",), "web"),
])
def test_template_options(params, path, expected):
    node = tspec(params)
    for key in path:
        node = node[key]
    assert node == expected


@pytest.mark.parametrize("disk, disk_entry, volume", [
    ({"name": "root", "image": "quay.io/a:1"}, {"name": "root", "disk": {}},
     {"name": "root", "containerDisk": {"image": "quay.io/a:1"}}),
    ({"name": "root", "image": "quay.io/a:1", "image_pull_policy": "Always", "bus": "virtio", "boot_order": 1},
     {"name": "root", "disk": {"bus": "virtio"}, "bootOrder": 1},
     {"name": "root", "containerDisk": {"image": "quay.io/a:1", "imagePullPolicy": "Always"}}),
    ({"name": "data", "pvc": "data-pvc", "readonly": True, "serial": "D1", "cache": "none"},
     {"name": "data", "disk": {"readonly": True}, "serial": "D1", "cache": "none"},
     {"name": "data", "persistentVolumeClaim": {"claimName": "data-pvc"}}),
    ({"name": "data", "pvc": "data-pvc", "hotpluggable": True}, {"name": "data", "disk": {}},
     {"name": "data", "persistentVolumeClaim": {"claimName": "data-pvc", "hotpluggable": True}}),
    ({"name": "dv", "data_volume": "existing-dv"}, {"name": "dv", "disk": {}},
     {"name": "dv", "dataVolume": {"name": "existing-dv"}}),
    ({"name": "scratch", "empty_disk": "2Gi", "bus": "sata"}, {"name": "scratch", "disk": {"bus": "sata"}},
     {"name": "scratch", "emptyDisk": {"capacity": "2Gi"}}),
    ({"name": "iso", "type": "cdrom", "bus": "sata", "pvc": "iso-pvc"}, {"name": "iso", "cdrom": {"bus": "sata"}},
     {"name": "iso", "persistentVolumeClaim": {"claimName": "iso-pvc"}}),
    ({"name": "lun0", "type": "lun", "pvc": "block"}, {"name": "lun0", "lun": {}},
     {"name": "lun0", "persistentVolumeClaim": {"claimName": "block"}}),
    ({"name": "root", "data_volume_template": {"size": "10Gi", "http": "https://x/img.qcow2"}},
     {"name": "root", "disk": {}}, {"name": "root", "dataVolume": {"name": "vm1-root"}}),
])
def test_disks(disk, disk_entry, volume):
    spec = tspec({"disks": [disk]})
    assert spec["domain"]["devices"]["disks"] == [disk_entry]
    assert spec["volumes"] == [volume]


@pytest.mark.parametrize("tpl, expected", [
    ({"size": "10Gi", "http": "https://x/img.qcow2"},
     {"metadata": {"name": "vm1-root"}, "spec": {"source": {"http": {"url": "https://x/img.qcow2"}},
                                                 "storage": {"resources": {"requests": {"storage": "10Gi"}}}}}),
    ({"size": "10Gi", "registry": "quay.io/containerdisks/fedora:41"},
     {"metadata": {"name": "vm1-root"}, "spec": {
         "source": {"registry": {"url": "docker://quay.io/containerdisks/fedora:41"}},
         "storage": {"resources": {"requests": {"storage": "10Gi"}}}}}),
    ({"size": "10Gi", "registry": "oci-archive://x"},
     {"metadata": {"name": "vm1-root"}, "spec": {"source": {"registry": {"url": "oci-archive://x"}},
                                                 "storage": {"resources": {"requests": {"storage": "10Gi"}}}}}),
    ({"size": "10Gi", "pvc": "golden/fedora", "name": "root-clone"},
     {"metadata": {"name": "root-clone"}, "spec": {"source": {"pvc": {"namespace": "golden", "name": "fedora"}},
                                                   "storage": {"resources": {"requests": {"storage": "10Gi"}}}}}),
    ({"size": "10Gi", "pvc": "fedora"},
     {"metadata": {"name": "vm1-root"}, "spec": {"source": {"pvc": {"name": "fedora"}},
                                                 "storage": {"resources": {"requests": {"storage": "10Gi"}}}}}),
    ({"size": "30Gi", "data_source": "openshift-virtualization-os-images/rhel9"},
     {"metadata": {"name": "vm1-root"}, "spec": {
         "sourceRef": {"kind": "DataSource", "name": "rhel9", "namespace": "openshift-virtualization-os-images"},
         "storage": {"resources": {"requests": {"storage": "30Gi"}}}}}),
    ({"size": "5Gi", "blank": True, "storage_class": "fast", "access_modes": ["ReadWriteMany"],
      "volume_mode": "Block"},
     {"metadata": {"name": "vm1-root"}, "spec": {"source": {"blank": {}}, "storage": {
         "resources": {"requests": {"storage": "5Gi"}}, "storageClassName": "fast",
         "accessModes": ["ReadWriteMany"], "volumeMode": "Block"}}}),
    ({"size": "5Gi"},
     {"metadata": {"name": "vm1-root"}, "spec": {"source": {"blank": {}},
                                                 "storage": {"resources": {"requests": {"storage": "5Gi"}}}}}),
])
def test_data_volume_templates(tpl, expected):
    vm = vmspec.build_vm(dict(BASE, disks=[{"name": "root", "data_volume_template": tpl}]), "vm1", "ns1")
    assert vm["spec"]["dataVolumeTemplates"] == [expected]


@pytest.mark.parametrize("networks, interfaces, nets", [
    (None, [{"name": "default", "masquerade": {}}], [{"name": "default", "pod": {}}]),
    ([{"name": "default"}], [{"name": "default", "masquerade": {}}], [{"name": "default", "pod": {}}]),
    ([{"name": "default", "type": "pod", "binding": "bridge"}], [{"name": "default", "bridge": {}}],
     [{"name": "default", "pod": {}}]),
    ([{"name": "br1", "network_name": "br1-net"}], [{"name": "br1", "bridge": {}}],
     [{"name": "br1", "multus": {"networkName": "br1-net"}}]),
    ([{"name": "br1", "type": "multus", "network_name": "demo/br1-net", "binding": "bridge", "default": True}],
     [{"name": "br1", "bridge": {}}], [{"name": "br1", "multus": {"networkName": "demo/br1-net", "default": True}}]),
    ([{"name": "fast", "type": "sriov", "network_name": "sriov-net"}], [{"name": "fast", "sriov": {}}],
     [{"name": "fast", "multus": {"networkName": "sriov-net"}}]),
    ([{"name": "default", "binding": "passt"}], [{"name": "default", "binding": {"name": "passt"}}],
     [{"name": "default", "pod": {}}]),
    ([{"name": "default", "mac": "02-00-00-00-00-AA", "model": "e1000e",
       "ports": [{"port": 22}, {"name": "dns", "port": 53, "protocol": "UDP"}]}],
     [{"name": "default", "masquerade": {}, "macAddress": "02:00:00:00:00:aa", "model": "e1000e",
       "ports": [{"port": 22, "protocol": "TCP"}, {"name": "dns", "port": 53, "protocol": "UDP"}]}],
     [{"name": "default", "pod": {}}]),
    ([{"name": "default"}, {"name": "br1", "network_name": "br1-net"}],
     [{"name": "default", "masquerade": {}}, {"name": "br1", "bridge": {}}],
     [{"name": "default", "pod": {}}, {"name": "br1", "multus": {"networkName": "br1-net"}}]),
    ([], [], []),
])
def test_networks(networks, interfaces, nets):
    spec = tspec({"networks": networks})
    assert spec["domain"]["devices"]["interfaces"] == interfaces
    assert spec["networks"] == nets


@pytest.mark.parametrize("cloud_init, key, expected", [
    ({"user": "fedora", "ssh_authorized_keys": ["ssh-ed25519 AAAA me@x"]}, "userData",
     '#cloud-config\nuser: "fedora"\nssh_authorized_keys:\n  - "ssh-ed25519 AAAA me@x"\n'),
    ({"password": "s3cret"}, "userData",
     '#cloud-config\npassword: "s3cret"\nchpasswd:\n  expire: false\nssh_pwauth: true\n'),
    ({"hostname": "web1"}, "userData", '#cloud-config\nhostname: "web1"\n'),
    ({"user_data": "#!/bin/sh\necho hi\n"}, "userData", "#!/bin/sh\necho hi\n"),
    ({"secret": "ci-secret"}, "secretRef", {"name": "ci-secret"}),
    ({"user_data": "#cloud-config\n", "network_data": "version: 2\n"}, "networkData", "version: 2\n"),
    ({"secret": "ci", "network_data_secret": "nd"}, "networkDataSecretRef", {"name": "nd"}),
])
def test_cloud_init(cloud_init, key, expected):
    spec = tspec({"cloud_init": cloud_init})
    assert spec["domain"]["devices"]["disks"][-1] == {"name": "cloudinit", "disk": {"bus": "virtio"}}
    volume = spec["volumes"][-1]
    assert volume["name"] == "cloudinit"
    assert volume["cloudInitNoCloud"][key] == expected


def test_cloud_init_configdrive():
    spec = tspec({"cloud_init": {"type": "configdrive", "user": "u"}})
    assert "cloudInitConfigDrive" in spec["volumes"][-1]


def test_vm_metadata_runstrategy_and_matchers():
    vm = vmspec.build_vm({"labels": {"app": "web", "n": 1}, "annotations": {"a": "b"}, "instancetype": "u1.medium",
                          "preference": {"name": "fedora", "kind": "namespaced"}}, "web1", "demo", "Halted")
    assert vm["apiVersion"] == "kubevirt.io/v1" and vm["kind"] == "VirtualMachine"
    assert vm["metadata"] == {"name": "web1", "namespace": "demo", "labels": {"app": "web", "n": "1"},
                              "annotations": {"a": "b"}}
    assert vm["spec"]["runStrategy"] == "Halted"
    assert vm["spec"]["instancetype"] == {"name": "u1.medium"}
    assert vm["spec"]["preference"] == {"name": "fedora", "kind": "VirtualMachinePreference"}
    assert vm["spec"]["template"]["metadata"] == {"labels": {"app": "web", "n": "1"}}


def test_no_run_strategy_leaves_it_out():
    vm = vmspec.build_vm(BASE, "web1", "demo")
    assert "runStrategy" not in vm["spec"]


@pytest.mark.parametrize("value, expected", [
    ("u1.small", {"name": "u1.small"}),
    ({"name": "x", "kind": "VirtualMachineClusterInstancetype"}, {"name": "x", "kind": "VirtualMachineClusterInstancetype"}),
    ({"name": "x", "kind": "cluster"}, {"name": "x", "kind": "VirtualMachineClusterInstancetype"}),
    ({"name": "x", "kind": "virtualmachineinstancetype"}, {"name": "x", "kind": "VirtualMachineInstancetype"}),
    ({"name": "x", "revision_name": "r1"}, {"name": "x", "revisionName": "r1"}),
])
def test_instancetype_matcher(value, expected):
    assert vmspec.matcher(value, "instancetype") == expected


def test_raw_spec_merges_by_name():
    spec = tspec({"disks": [{"name": "root", "image": "a"}],
                  "spec": {"domain": {"devices": {"disks": [{"name": "root", "disk": {"bus": "sata"}}],
                                                  "autoattachSerialConsole": True}},
                           "volumes": [{"name": "root", "containerDisk": {"image": "b"}}],
                           "priorityClassName": "high"}})
    assert spec["domain"]["devices"]["disks"] == [{"name": "root", "disk": {"bus": "sata"}}]
    assert spec["domain"]["devices"]["autoattachSerialConsole"] is True
    assert spec["volumes"] == [{"name": "root", "containerDisk": {"image": "b"}}]
    assert spec["priorityClassName"] == "high"


def test_raw_spec_networks_suppress_default_network():
    spec = tspec({"spec": {"domain": {"devices": {"interfaces": [{"name": "n1", "bridge": {}}]}},
                           "networks": [{"name": "n1", "multus": {"networkName": "x"}}]}})
    assert spec["networks"] == [{"name": "n1", "multus": {"networkName": "x"}}]
    assert spec["domain"]["devices"]["interfaces"] == [{"name": "n1", "bridge": {}}]


def test_deep_merge_keeps_base_untouched():
    base = {"a": {"b": 1}, "l": [{"name": "x", "v": 1}]}
    out = vmspec.deep_merge(base, {"a": {"c": 2}, "l": [{"name": "y"}]})
    assert out == {"a": {"b": 1, "c": 2}, "l": [{"name": "x", "v": 1}, {"name": "y"}]}
    assert base == {"a": {"b": 1}, "l": [{"name": "x", "v": 1}]}


def test_build_vmi():
    vmi = vmspec.build_vmi(dict(BASE, disks=[{"name": "root", "image": "a"}]), "v1", "ns")
    assert vmi["kind"] == "VirtualMachineInstance"
    assert vmi["spec"]["domain"]["memory"] == {"guest": "1Gi"}
    assert vmi["spec"]["networks"] == [{"name": "default", "pod": {}}]


def test_from_definition():
    obj = vmspec.from_definition({"metadata": {"name": "x", "resourceVersion": "5", "uid": "u"}, "spec": {},
                                  "status": {"a": 1}}, "VirtualMachine", namespace="ns")
    assert obj == {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
                   "metadata": {"name": "x", "namespace": "ns"}, "spec": {}}


@pytest.mark.parametrize("obj, expected", [
    ({"kind": "VirtualMachine", "spec": {"instancetype": {"name": "u1"}}}, True),
    ({"kind": "VirtualMachine", "spec": {"template": {"spec": {"domain": {"memory": {"guest": "1Gi"}}}}}}, True),
    ({"kind": "VirtualMachine", "spec": {"template": {"spec": {"domain": {"resources": {
        "requests": {"memory": "1Gi"}}}}}}}, True),
    ({"kind": "VirtualMachine", "spec": {"template": {"spec": {"domain": {}}}}}, False),
    ({"kind": "VirtualMachineInstance", "spec": {"domain": {"memory": {"guest": "1Gi"}}}}, True),
])
def test_memory_defined(obj, expected):
    assert vmspec.memory_defined(obj) is expected


# -- bad input: one clear sentence naming the option ------------------------------------------------
@pytest.mark.parametrize("params, message", [
    ({"memory": "2GB"}, "memory '2GB' is not a Kubernetes quantity; did you mean '2Gi'?"),
    ({"memory": "2 gib"}, "did you mean '2Gi'?"),
    ({"memory": "512mb"}, "did you mean '512Mi'?"),
    ({"memory": "lots"}, "such as 2Gi"),
    ({"memory": "1024"}, "memory '1024' is only 1024 bytes; did you mean '1024Mi'?"),
    ({"cpu": {"cores": 0}}, "cpu.cores must be a positive integer"),
    ({"firmware": {"bootloader": "bios", "secure_boot": True}}, "firmware.secure_boot needs firmware.bootloader efi"),
    ({"disks": [{"name": "root", "image": "a", "pvc": "b"}]},
     "disk 'root' has 2 sources (image, pvc); give exactly one of image, pvc, data_volume, data_volume_template, "
     "empty_disk."),
    ({"disks": [{"name": "root"}]}, "disk 'root' has no source"),
    ({"disks": [{"name": "Root", "image": "a"}]}, "disk name 'Root' is invalid"),
    ({"disks": [{"name": "a", "image": "x"}, {"name": "a", "image": "y"}]}, "disk name 'a' is used twice"),
    ({"disks": [{"name": "cloudinit", "image": "x"}]}, "reserved for cloud_init"),
    ({"disks": [{"name": "c", "type": "cdrom", "bus": "virtio", "pvc": "x"}]}, "can't use bus virtio"),
    ({"disks": [{"name": "c", "type": "cdrom", "readonly": True, "pvc": "x"}]}, "always read-only"),
    ({"disks": [{"name": "d", "pvc": "x", "boot_order": 0}]}, "boot_order must be 1 or more"),
    ({"disks": [{"name": "d", "pvc": "x", "image_pull_policy": "Always"}]}, "image_pull_policy applies to image"),
    ({"disks": [{"name": "d", "image": "x", "hotpluggable": True}]}, "hotpluggable applies to pvc"),
    ({"disks": [{"name": "d", "empty_disk": "1GB"}]}, "disk 'd' empty_disk '1GB' is not a Kubernetes quantity; did"),
    ({"disks": [{"name": "d", "data_volume_template": {"size": "10G"}}]}, None),
    ({"disks": [{"name": "d", "data_volume_template": {"size": "10GB"}}]}, "data_volume_template.size '10GB'"),
    ({"disks": [{"name": "d", "data_volume_template": {"size": "1Gi", "http": "u", "registry": "r"}}]},
     "data_volume_template has 2 sources (http, registry)"),
    ({"disks": [{"name": "d", "data_volume_template": {"size": "1Gi", "pvc": "a/b/c"}}]},
     "must be 'name' or 'namespace/name'"),
    ({"networks": [{"name": "n", "type": "vlan"}]}, "network 'n' has unknown type 'vlan'; use one of pod, multus, sriov"),
    ({"networks": [{"name": "n", "type": "multus"}]}, "needs network_name"),
    ({"networks": [{"name": "n", "network_name": "x", "binding": "masquerade"}]},
     "masquerade binding works only with the pod network"),
    ({"networks": [{"name": "n", "type": "pod", "network_name": "x"}]}, "takes no network_name"),
    ({"networks": [{"name": "a"}, {"name": "b", "type": "pod"}]}, "a VM can have one pod network at most"),
    ({"networks": [{"name": "a"}, {"name": "a", "network_name": "x"}]}, "network name 'a' is used twice"),
    ({"networks": [{"name": "a", "mac": "zz"}]}, "is not a MAC address"),
    ({"networks": [{"name": "a", "ports": [{"port": 70000}]}]}, "out of range"),
    ({"networks": [{"name": "a", "binding": "sriov"}]}, "sriov binding needs type sriov"),
    ({"networks": [{"name": "a", "type": "sriov", "network_name": "x", "binding": "bridge"}]}, "needs binding sriov"),
    ({"networks": [{"name": "a", "default": True}]}, "default applies to multus networks"),
    ({"cloud_init": {"user_data": "x", "user": "u"}}, "cloud_init.user_data can't be combined with cloud_init.user"),
    ({"cloud_init": {"secret": "s", "password": "p"}}, "cloud_init.secret can't be combined"),
    ({"cloud_init": {"network_data": "a", "network_data_secret": "b", "user": "u"}}, "mutually exclusive"),
    ({"cloud_init": {"type": "nocloud"}}, "cloud_init needs user_data"),
    ({"cloud_init": {"user_data": "x" * 3000}}, "over KubeVirt's 2048-byte limit"),
    ({"cloud_init": {"user_data": "#c", "network_data": "x" * 3000}}, "network_data is over"),
    ({"instancetype": "u1.small", "memory": "2Gi"}, "memory can't be set together with instancetype 'u1.small'"),
    ({"instancetype": {"kind": "x"}}, "instancetype must be a name or a dict"),
    ({"instancetype": {"name": "x", "kind": "weird"}}, "instancetype kind 'weird' is unknown"),
    ({"instancetype": {"name": "x", "color": "red"}}, "unknown keys color"),
    ({"termination_grace_period": -1}, "termination_grace_period must be 0 or more"),
    ({"hostname": "Bad_Host"}, "hostname 'Bad_Host' is invalid"),
    ({"spec": {"domain": {"devices": {"disks": [{"name": "x", "disk": {}}]}}}},
     "disk 'x' has no volume of the same name"),
    ({"spec": {"domain": {"devices": {"interfaces": [{"name": "x", "bridge": {}}]}}}},
     "interface 'x' has no network of the same name"),
    ({"networks": [{"name": "a"}], "spec": {"networks": [{"name": "b", "pod": {}}]}},
     "network 'b' has no interface of the same name"),
])
def test_bad_input(params, message):
    full = dict(BASE, **params)
    if "instancetype" in params and "memory" not in params:
        full.pop("memory")
    if message is None:
        vmspec.build_vm(full, "vm1", "ns1")
        return
    with pytest.raises(InputError) as exc:
        vmspec.build_vm(full, "vm1", "ns1")
    assert message in str(exc.value)
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize("name", ["Bad_Name", "UPPER", "-lead", "trail-", "a" * 64, "", "dot.ted", "spa ce"])
def test_bad_names(name):
    with pytest.raises(InputError) as exc:
        vmspec.build_vm(BASE, name, "ns1")
    assert "RFC 1123" in str(exc.value) or "required" in str(exc.value)


@pytest.mark.parametrize("name", ["a", "web-1", "a" * 63, "0vm"])
def test_good_names(name):
    assert res.check_name(name) == name


def test_suggested_name():
    with pytest.raises(InputError) as exc:
        res.check_name("My_VM")
    assert "e.g. 'my-vm'" in str(exc.value)


def test_vmi_rejects_templates_and_instancetypes():
    with pytest.raises(InputError) as exc:
        vmspec.build_vmi(dict(BASE, disks=[{"name": "d", "data_volume_template": {"size": "1Gi"}}]), "v", "n")
    assert "needs a VirtualMachine" in str(exc.value)
    with pytest.raises(InputError):
        vmspec.build_vmi({"instancetype": "u1"}, "v", "n")


@pytest.mark.parametrize("quantity, value", [
    ("1Ki", 1024), ("2Gi", 2 * 2 ** 30), ("1G", 1e9), ("1.5Mi", 1.5 * 2 ** 20), ("100", 100), ("1e3", 1000),
    ("500m", 0.5),
])
def test_quantity_bytes(quantity, value):
    assert vmspec.quantity_bytes(quantity) == value


def test_redact_and_redact_pair():
    vm = vmspec.build_vm(dict(BASE, cloud_init={"password": "hunter2"}), "v", "n")
    text = repr(redact.redact(vm))
    assert "hunter2" not in text and redact.REDACTED in text
    vm2 = vmspec.build_vm(dict(BASE, cloud_init={"password": "other"}), "v", "n")
    before, after = redact.redact_pair(vm, vm2)
    assert "hunter2" not in repr(before) and "other" not in repr(after)
    assert redact.REDACTED_CHANGED in repr(after)
    same_b, same_a = redact.redact_pair(vm, vm)
    assert same_b == same_a


@pytest.mark.parametrize("raw, message", [
    ({"domain": {"devices": {"disks": "all of them"}}}, "spec.domain.devices.disks must be a list, got str 'all of them'."),
    ({"domain": {"devices": {"disks": ["root"]}}}, "spec.domain.devices.disks[0] must be a mapping, got str 'root'."),
    ({"domain": "big"}, "spec.domain must be a mapping, got str 'big'."),
    ({"domain": {"devices": []}}, "spec.domain.devices must be a mapping, got list []."),
    ({"volumes": {"root": {}}}, "spec.volumes must be a list, got dict {'root': {}}."),
    ({"networks": [None]}, "spec.networks[0] must be a mapping, got NoneType None."),
    ({"domain": {"devices": {"interfaces": "eth0"}}}, "spec.domain.devices.interfaces must be a list, got str 'eth0'."),
    ("domain: {}", "spec must be a dict (a VirtualMachineInstance spec)."),
])
def test_malformed_raw_spec_names_the_field(raw, message):
    with pytest.raises(InputError) as err:
        vmspec.build_vm(dict(BASE, spec=raw), "vm1", "ns1")
    assert str(err.value) == message


# -- map[string]string values keep the text the user wrote ------------------------------------------
@pytest.mark.parametrize("value, text", [
    (True, "true"), (False, "false"), (3, "3"), (0, "0"), (1.5, "1.5"), (None, ""),
    ("True", "True"), ("yes", "yes"), ("", ""),
])
def test_string_value_is_the_yaml_text(value, text):
    assert vmspec.string_value(value, "labels.x") == text


def test_label_annotation_and_node_selector_values_are_never_python_str_of_a_bool():
    vm = vmspec.build_vm({"labels": {"prod": True, "tier": 2, "quoted": "True"}, "annotations": {"debug": False},
                          "memory": "1Gi", "node_selector": {"ssd": True}}, "web1", "demo")
    want = {"prod": "true", "tier": "2", "quoted": "True"}
    assert vm["metadata"]["labels"] == want and vm["spec"]["template"]["metadata"]["labels"] == want
    assert vm["metadata"]["annotations"] == {"debug": "false"}
    assert vm["spec"]["template"]["spec"]["nodeSelector"] == {"ssd": "true"}
    vmi = vmspec.build_vmi({"labels": {"prod": True}, "memory": "1Gi"}, "vmi1", "demo")
    assert vmi["metadata"]["labels"] == {"prod": "true"}


def test_a_nested_label_value_is_refused_naming_it():
    with pytest.raises(InputError, match=r"^labels\.app must be a string, got dict \{'a': 1\}\.$"):
        vmspec.p_labels({"labels": {"app": {"a": 1}}})


# -- access_credentials ------------------------------------------------------------------------------
def test_access_credentials_build_kubevirts_fields():
    spec = tspec({"cloud_init": {"type": "configdrive", "user": "u"}, "access_credentials": [
        {"ssh_public_key": {"secret": "keys", "users": ["fedora", "root", "fedora"]}},
        {"ssh_public_key": {"secret": "boot-keys", "propagation": "configdrive"}},
        {"user_password": {"secret": "passwords"}}]})
    assert spec["accessCredentials"] == [
        {"sshPublicKey": {"source": {"secret": {"secretName": "keys"}},
                          "propagationMethod": {"qemuGuestAgent": {"users": ["fedora", "root"]}}}},
        {"sshPublicKey": {"source": {"secret": {"secretName": "boot-keys"}},
                          "propagationMethod": {"configDrive": {}}}},
        {"userPassword": {"source": {"secret": {"secretName": "passwords"}},
                          "propagationMethod": {"qemuGuestAgent": {}}}},
    ]


def test_access_credentials_nocloud_with_the_cloud_init_volume():
    spec = tspec({"cloud_init": {"user": "u"},
                  "access_credentials": [{"ssh_public_key": {"secret": "k", "propagation": "nocloud"}}]})
    assert spec["accessCredentials"][0]["sshPublicKey"]["propagationMethod"] == {"noCloud": {}}


def test_no_access_credentials_no_field():
    assert "accessCredentials" not in tspec({"access_credentials": []})
    assert "access_credentials" in vmspec.TEMPLATE_OPTIONS


@pytest.mark.parametrize("credentials, cloud_init, message", [
    ([{"ssh_public_key": {"secret": "k"}}], None, r"access_credentials\[0\].ssh_public_key.users must name"),
    ([{"ssh_public_key": {"secret": "k", "users": []}}], None, "users must name at least one guest user"),
    ([{"ssh_public_key": {"users": ["u"]}}], None, r"access_credentials\[0\].ssh_public_key.secret is required"),
    ([{"ssh_public_key": {"secret": "Bad_Name", "users": ["u"]}}], None, "secret"),
    ([{"ssh_public_key": {"secret": "k", "users": ["u"]}, "user_password": {"secret": "p"}}], None,
     r"access_credentials\[0\] must have exactly one of ssh_public_key or user_password, not ssh_public_key and "
     "user_password"),
    ([{}], None, r"access_credentials\[0\] must have exactly one of ssh_public_key or user_password\."),
    ([{"ssh_key": {"secret": "k"}}], None, r"\(unknown: ssh_key\)"),
    ([{"ssh_public_key": {"secret": "k", "users": ["u"], "propagate": "x"}}], None, "unknown: propagate"),
    ([{"user_password": {"secret": "p", "users": ["u"]}}], None,
     r"access_credentials\[0\].user_password must be a dict with secret; unknown: users"),
    ([{"ssh_public_key": {"secret": "k", "propagation": "agent", "users": ["u"]}}], None,
     "propagation must be one of qemu_guest_agent, nocloud, configdrive, not 'agent'"),
    ([{"ssh_public_key": {"secret": "k", "propagation": "nocloud", "users": ["u"]}}], {"user": "u"},
     "users applies to propagation qemu_guest_agent only"),
    ([{"ssh_public_key": {"secret": "k", "propagation": "nocloud"}}], None,
     r"access_credentials\[0\].ssh_public_key.propagation nocloud needs a cloud-init volume of that type "
     r"\(cloud_init with type: nocloud\)"),
    ([{"ssh_public_key": {"secret": "k", "propagation": "configdrive"}}], {"user": "u"},
     "propagation configdrive needs a cloud-init volume"),
    ([{"user_password": {"secret": "p"}}] * 257, None, "has 257 entries; KubeVirt allows 256 at most"),
])
def test_access_credentials_are_checked_before_the_write(credentials, cloud_init, message):
    params = {"access_credentials": credentials}
    if cloud_init:
        params["cloud_init"] = cloud_init
    with pytest.raises(InputError, match=message):
        tspec(params)


# -- live resize: cpu.max_sockets, memory.max_guest ---------------------------------------------------
def test_max_sockets_and_max_guest_reach_the_template():
    domain = tspec({"cpu": {"sockets": 1, "max_sockets": 4}, "memory": {"guest": "1Gi", "max_guest": "4Gi"}})["domain"]
    assert domain["cpu"] == {"sockets": 1, "maxSockets": 4}
    assert domain["memory"] == {"guest": "1Gi", "maxGuest": "4Gi"}
    assert tspec({"memory": "2Gi"})["domain"]["memory"] == {"guest": "2Gi"}


@pytest.mark.parametrize("params, message", [
    ({"cpu": {"sockets": 3, "max_sockets": 2}}, "cpu.sockets 3 is more than cpu.max_sockets 2"),
    ({"cpu": {"max_sockets": 0}}, "cpu.max_sockets must be a positive integer, got 0."),
    ({"memory": {"guest": "4Gi", "max_guest": "2Gi"}}, "memory.guest 4Gi is more than memory.max_guest 2Gi"),
    ({"memory": {"guest": "2Gi", "maximum": "4Gi"}}, "memory has unknown keys maximum; use guest and max_guest"),
    ({"memory": {"guest": "2GB"}}, "memory.guest '2GB' is not a Kubernetes quantity; did you mean '2Gi'?"),
    ({"memory": {"max_guest": "4"}}, "memory.max_guest '4' is only 4 bytes"),
    ({"memory": ["1Gi"]}, "memory must be a quantity such as 2Gi or a dict with guest and max_guest, not a list"),
    ({"memory": True}, "memory must be a quantity such as 2Gi or a dict with guest and max_guest, not a boolean"),
])
def test_live_resize_options_are_checked_before_writing(params, message):
    with pytest.raises(InputError) as err:
        tspec(params)
    assert message in str(err.value)


# -- inferFromVolume -------------------------------------------------------------------------------
def test_infer_from_volume_matchers_reach_the_vm():
    params = {"memory": None, "disks": [{"name": "root", "pvc": "golden"}],
              "instancetype": {"infer_from_volume": "root", "infer_from_volume_failure_policy": "Ignore"},
              "preference": {"infer_from_volume": "root"}}
    vm = vmspec.build_vm(params, "web1", "demo")
    assert vm["spec"]["instancetype"] == {"inferFromVolume": "root", "inferFromVolumeFailurePolicy": "Ignore"}
    assert vm["spec"]["preference"] == {"inferFromVolume": "root"}


@pytest.mark.parametrize("value, message", [
    ({"infer_from_volume": "root", "name": "u1.small"},
     "instancetype.name can't be set together with instancetype.infer_from_volume"),
    ({"infer_from_volume": "root", "infer_from_volume_failure_policy": "IgnoreInferFromVolumeFailure"},
     "instancetype.infer_from_volume_failure_policy 'IgnoreInferFromVolumeFailure' is unknown; use Reject"),
    ({"infer_from_volume_failure_policy": "Ignore"},
     "instancetype.infer_from_volume_failure_policy needs instancetype.infer_from_volume."),
    ({"kind": "cluster"}, "instancetype must be a name or a dict with name"),
])
def test_infer_from_volume_input_errors(value, message):
    with pytest.raises(InputError) as err:
        vmspec.matcher(value, "instancetype")
    assert message in str(err.value)


def test_infer_from_volume_must_name_a_volume_of_the_vm():
    with pytest.raises(InputError) as err:
        vmspec.build_vm({"disks": [{"name": "root", "pvc": "golden"}], "preference": {"infer_from_volume": "data"}},
                        "web1", "demo")
    assert "preference.infer_from_volume 'data' is not a volume of the VM (root)" in str(err.value)


def test_durations_and_macs_have_one_check():
    """spec.check_duration (vm_export ttl, vm_snapshot failure_deadline) and spec.is_mac (networks, vm_clone)."""
    assert vmspec.check_duration(" 1h30m ", "ttl") == "1h30m"
    assert vmspec.check_duration("250ms", "ttl") == "250ms"
    for bad in ("90", "2x", "h", "", "1h30"):
        with pytest.raises(InputError) as err:
            vmspec.check_duration(bad, "ttl", "2h or 90m")
        assert str(err.value) == "ttl %r is not a duration; use for example 2h or 90m." % bad
    assert vmspec.is_mac("02:00:00:AA:bb:01") and vmspec.is_mac("02-00-00-aa-bb-01")
    assert not vmspec.is_mac("02:00:00:aa:bb") and not vmspec.is_mac("zz:00:00:aa:bb:01")
