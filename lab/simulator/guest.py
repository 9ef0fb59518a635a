"""What runs inside a simulated guest: OS, guest agent, cloud-init credentials.

A guest has a QEMU guest agent when one of its disk images (containerDisk image, DataVolume
http/registry URL) names fedora, centos, rhel or ubuntu, unless the VMI annotation
`lab.virtops.io/guest-agent` says "true" or "false".
"""
import base64

import yaml

from .util import dig, seeded

AGENT_ANNOTATION = "lab.virtops.io/guest-agent"

# name fragment -> (os id, name, version id, kernel, default user, default password)
DISTROS = [
    ("fedora", ("fedora", "Fedora Linux", "41", "6.11.4-301.fc41.x86_64", "fedora", None)),
    ("centos", ("centos", "CentOS Stream", "9", "5.14.0-522.el9.x86_64", "cloud-user", None)),
    ("rhel", ("rhel", "Red Hat Enterprise Linux", "9.5", "5.14.0-503.11.1.el9_5.x86_64", "cloud-user", None)),
    ("ubuntu", ("ubuntu", "Ubuntu", "24.04", "6.8.0-48-generic", "ubuntu", None)),
    ("cirros", ("cirros", "CirrOS", "0.6.2", "5.15.0-71-generic", "cirros", "gocubsgo")),
    ("debian", ("debian", "Debian GNU/Linux", "12", "6.1.0-26-cloud-amd64", "debian", None)),
    ("windows", ("mswindows", "Microsoft Windows Server 2022", "2022", "10.0.20348", "Administrator", None)),
]
AGENT_DISTROS = ("fedora", "centos", "rhel", "ubuntu")


def image_names(vmi, datavolumes=None):
    """Every image reference the VMI boots from: containerDisk images and DataVolume sources."""
    names = []
    for vol in dig(vmi, "spec", "volumes", default=[]):
        img = dig(vol, "containerDisk", "image")
        if img:
            names.append(img.lower())
    for dv in datavolumes or []:
        for path in (("spec", "source", "http", "url"), ("spec", "source", "registry", "url"),
                     ("spec", "source", "pvc", "name"), ("spec", "sourceRef", "name")):
            v = dig(dv, *path)
            if v:
                names.append(str(v).lower())
    return names


def distro(vmi, datavolumes=None):
    for name in image_names(vmi, datavolumes):
        for frag, info in DISTROS:
            if frag in name:
                return info
    return ("linux", "Linux", "", "6.1.0", "user", None)


def has_agent(vmi, datavolumes=None):
    ann = (dig(vmi, "metadata", "annotations", default={}) or {}).get(AGENT_ANNOTATION)
    if ann is not None:
        return str(ann).lower() == "true"
    names = image_names(vmi, datavolumes)
    return any(d in n for n in names for d in AGENT_DISTROS)


def hostname(vmi):
    spec = vmi.get("spec", {})
    return spec.get("hostname") or vmi["metadata"]["name"]


def cloud_init_user_data(vmi):
    for vol in dig(vmi, "spec", "volumes", default=[]):
        for kind in ("cloudInitNoCloud", "cloudInitConfigDrive"):
            src = vol.get(kind)
            if not src:
                continue
            if src.get("userData"):
                return src["userData"]
            if src.get("userDataBase64"):
                try:
                    return base64.b64decode(src["userDataBase64"]).decode(errors="replace")
                except ValueError:
                    return ""
    return ""


def credentials(vmi, datavolumes=None):
    """{user: password} the console accepts, from cloud-init user data; the distro's default user."""
    info = distro(vmi, datavolumes)
    default_user, default_pw = info[4], info[5]
    creds = {}
    data = cloud_init_user_data(vmi)
    cfg = {}
    if data:
        try:
            cfg = yaml.safe_load(data) or {}
        except yaml.YAMLError:
            cfg = {}
        if not isinstance(cfg, dict):
            cfg = {}
    user = cfg.get("user")
    if isinstance(user, dict):
        user = user.get("name")
    user = user or default_user
    if cfg.get("password") is not None:
        creds[user] = str(cfg["password"])
    chp = cfg.get("chpasswd")
    if isinstance(chp, dict):
        listing = chp.get("list")
        if isinstance(listing, str):
            listing = listing.splitlines()
        for line in listing or []:
            if isinstance(line, str) and ":" in line:
                u, p = line.split(":", 1)
                creds[u.strip()] = p.strip()
        for entry in chp.get("users") or []:
            if isinstance(entry, dict) and entry.get("name"):
                creds[entry["name"]] = str(entry.get("password", ""))
    for entry in cfg.get("users") or []:
        if isinstance(entry, dict) and entry.get("name"):
            pw = entry.get("plain_text_passwd") or entry.get("passwd")
            if pw:
                creds[entry["name"]] = str(pw)
    if default_pw and default_user not in creds:
        creds[default_user] = default_pw
    return creds, user


def os_info(vmi, datavolumes=None):
    osid, name, version, kernel, _, _ = distro(vmi, datavolumes)
    if osid == "mswindows":
        return {"id": osid, "name": name, "prettyName": name, "version": version, "versionId": version,
                "kernelRelease": kernel, "kernelVersion": kernel, "machine": "x86_64"}
    pretty = f"{name} {version}".strip()
    return {"id": osid, "name": name, "prettyName": pretty, "version": version, "versionId": version,
            "kernelRelease": kernel, "kernelVersion": "#1 SMP PREEMPT_DYNAMIC", "machine": "x86_64"}


def filesystems(vmi):
    disks = []
    for i, disk in enumerate(dig(vmi, "spec", "domain", "devices", "disks", default=[])):
        if disk.get("cdrom") is not None or _is_cloudinit(vmi, disk["name"]):
            continue
        total = 10 * 2 ** 30 if i == 0 else 5 * 2 ** 30
        used = int(total * (0.2 + 0.3 * seeded(vmi["metadata"]["name"] + disk["name"])))
        letter = chr(ord("a") + i)
        disks.append({"diskName": f"vd{letter}1" if i == 0 else f"vd{letter}",
                      "mountPoint": "/" if i == 0 else f"/mnt/{disk['name']}",
                      "fileSystemType": "xfs" if i == 0 else "ext4",
                      "usedBytes": used, "totalBytes": total,
                      "disk": [{"busType": disk.get("disk", {}).get("bus", "virtio"),
                                "serial": disk.get("serial", "")}]})
    return disks


def _is_cloudinit(vmi, volname):
    for vol in dig(vmi, "spec", "volumes", default=[]):
        if vol.get("name") == volname:
            return "cloudInitNoCloud" in vol or "cloudInitConfigDrive" in vol
    return False


def users(vmi, since, datavolumes=None):
    _, user = credentials(vmi, datavolumes)
    return [{"userName": user, "domain": "", "loginTime": since}]


def guest_agent_info(vmi, since, datavolumes=None):
    return {
        "guestAgentVersion": "9.0.0",
        "supportedCommands": [{"name": c, "enabled": True} for c in (
            "guest-exec", "guest-get-fsinfo", "guest-get-host-name", "guest-get-osinfo",
            "guest-get-timezone", "guest-get-users", "guest-info", "guest-network-get-interfaces",
            "guest-ping", "guest-shutdown", "guest-fsfreeze-freeze", "guest-fsfreeze-thaw")],
        "hostname": hostname(vmi),
        "os": os_info(vmi, datavolumes),
        "timezone": "UTC, 0",
        "userList": users(vmi, since, datavolumes),
        "fsInfo": {"disks": filesystems(vmi)},
        "fsFreezeStatus": "thawed",
    }


def is_windows(vmi, datavolumes=None):
    return distro(vmi, datavolumes)[0] == "mswindows"

