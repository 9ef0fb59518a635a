#!/usr/bin/env python3
"""Build the lab's real guest from Debian packages only: a kernel plus one initramfs.

    python3 lab/guest/build.py [--out lab/.guest] [--force]     (`make lab-guest`)

The packages come from the machine's own Debian release by `apt-get download` (never installed):
the cloud kernel and its modules, busybox-static, dropbear-bin, qemu-guest-agent and a minimal
Python 3, with the shared libraries their ELF files need taken from the same release. Our own
files (lab/guest/rootfs/: init scripts, the small cloud-init) are laid over them. The result lives
in OUT/<key>/ where the key hashes the package versions and our files, so a build is reused until
one of them changes; OUT/current points at the newest. Prints the build folder.
"""
import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOTFS = HERE / "rootfs"
DEFAULT_OUT = HERE.parent / ".guest"

KERNEL_META = "linux-image-cloud-amd64"
PYTHON_META = "python3-minimal"
# Packages whose files the guest runs; their shared libraries are collected from the ELF files.
PROGRAMS = ["busybox-static", "dropbear-bin", "qemu-guest-agent"]
# The kernel modules init loads (their dependencies come first, from each module's .modinfo):
# virtio transport, NIC, console (the agent's channel), disks, what cloud-init disks need, and ext4
# for the ext2 a guest makes on a volume with busybox's mke2fs (built into Debian's cloud kernel, so
# listed only in case a kernel has it as a module: builtins are skipped).
MODULES = [
    "virtio", "virtio_ring", "virtio_pci_legacy_dev", "virtio_pci_modern_dev", "virtio_pci",
    "virtio_net", "virtio_console", "virtio_blk", "virtio_rng", "virtio_scsi", "sd_mod",
    "cdrom", "sr_mod", "ata_piix", "isofs", "vfat", "nls_cp437", "nls_ascii", "nls_iso8859_1",
    "button", "evdev", "virtio_balloon", "ext4",
]
# Modules of libpython3.11-stdlib that python3-minimal lacks but Ansible's module wrapper and
# common modules import (AnsiballZ: json, shutil, zipfile's zlib; modules: tempfile, shlex ...).
PY_STDLIB_EXTRA = [
    "json", "shutil", "shlex", "glob", "fnmatch", "tempfile", "random", "bisect", "hashlib",
    "base64", "datetime", "_strptime", "calendar", "locale", "platform", "pwd", "grp", "selectors",
    "subprocess", "signal", "syslog", "errno", "uuid", "pty", "tty", "select", "traceback",
    "linecache", "tokenize", "token", "gettext", "textwrap", "string", "stringprep", "zipfile",
    "importlib", "collections", "email", "http", "urllib", "html", "logging", "lzma", "bz2",
    "_compression", "contextvars", "numbers", "decimal", "_pydecimal", "fractions", "dataclasses",
    "copy", "pprint", "inspect", "dis", "opcode", "ast", "ipaddress", "getpass", "pathlib",
    "shutil", "stat", "struct", "threading", "queue", "weakref", "typing", "pkgutil", "runpy",
    "socket", "string", "heapq", "statistics", "difflib", "csv", "configparser",
    # the setup module (fact gathering) also imports these
    "multiprocessing", "concurrent", "secrets", "hmac", "ctypes", "sysconfig", "shlex", "getopt",
]
PY_DYNLOAD_EXTRA = ["_json", "_datetime", "_bz2", "_lzma", "_uuid", "_decimal", "_contextvars",
                    "_queue", "_random", "_bisect", "_heapq", "_struct", "_csv",
                    "select", "mmap", "fcntl", "termios", "grp", "syslog", "unicodedata", "_socket",
                    "math", "binascii", "_posixsubprocess", "zlib", "_statistics", "_opcode",
                    "_sha512", "_sha256", "_sha1", "_md5", "_blake2", "_sha3", "array", "_pickle",
                    "resource", "_multibytecodec", "_zoneinfo", "_asyncio", "_ctypes", "pyexpat",
                    "_multiprocessing", "_posixshmem",
                    "_elementtree"]
# Codecs kept of encodings/ (the CJK and legacy code pages are most of its size).
PY_ENCODINGS = ["__init__", "aliases", "ascii", "latin_1", "utf_8", "utf_8_sig", "utf_16", "utf_16_le",
                "utf_16_be", "utf_32", "utf_32_le", "utf_32_be", "idna", "punycode", "raw_unicode_escape",
                "unicode_escape", "charmap", "cp437", "cp1252", "iso8859_1", "iso8859_15", "base64_codec",
                "hex_codec", "zlib_codec", "bz2_codec", "uu_codec", "quopri_codec", "rot_13", "undefined",
                "mbcs", "oem"]
LIB_DIRS = ["usr/lib/x86_64-linux-gnu", "lib/x86_64-linux-gnu", "usr/lib64", "lib64", "usr/lib", "lib"]


def run(argv, **kw):
    return subprocess.run(argv, check=True, text=True, capture_output=True, **kw).stdout


def apt_fields(packages):
    """{package: {field: value}} of each package's candidate version (apt-cache show)."""
    try:
        out = run(["apt-cache", "show", "--no-all-versions", *packages])
    except subprocess.CalledProcessError:
        run(["apt-get", "update", "-qq"])
        out = run(["apt-cache", "show", "--no-all-versions", *packages])
    found = {}
    for stanza in out.strip().split("\n\n"):
        fields = dict(re.findall(r"^([\w-]+): ?(.*)$", stanza, re.M))
        found.setdefault(fields["Package"], fields)
    missing = sorted(set(packages) - set(found))
    if missing:
        sys.exit(f"lab-guest: Debian has no package {', '.join(missing)} (apt-get update?)")
    return found


def depends(fields, key="Depends"):
    names = []
    for alt in fields.get(key, "").split(","):
        name = alt.split("|")[0].strip().split(" ")[0].split(":")[0]
        if name:
            names.append(name)
    return names


def library_closure(packages):
    """The shared-library packages (Debian section `libs`) the given packages depend on, recursively."""
    seen, todo, libs = set(), list(packages), set()
    while todo:
        batch = [p for p in todo if p not in seen]
        todo = []
        if not batch:
            break
        seen.update(batch)
        for name, fields in apt_fields(batch).items():
            if name not in packages and fields.get("Section") != "libs":
                continue
            libs.add(name)
            todo += depends(fields, "Pre-Depends") + depends(fields)
    return libs - set(packages)


def resolve_packages():
    """{package: version}: the kernel, the programs, Python and their libraries."""
    kernel = depends(apt_fields([KERNEL_META])[KERNEL_META])[0]
    python = apt_fields([PYTHON_META])[PYTHON_META]
    python_pkgs = [p for p in depends(python, "Pre-Depends") if p.startswith("python3")]
    python_lib = "lib" + python_pkgs[0]  # libpython3.X-minimal
    stdlib = python_lib.replace("-minimal", "-stdlib")
    wanted = PROGRAMS + python_pkgs + [python_lib, stdlib]
    wanted += sorted(library_closure(PROGRAMS + python_pkgs + [python_lib, stdlib]) - set(wanted))
    fields = apt_fields([kernel] + wanted)
    return {name: fields[name]["Version"] for name in [kernel] + wanted}, kernel


def sources_digest():
    h = hashlib.sha256(Path(__file__).read_bytes())
    for path in sorted(ROOTFS.rglob("*")):
        if path.is_file():
            h.update(str(path.relative_to(ROOTFS)).encode() + b"\0" + path.read_bytes())
    return h


def cache_key(versions):
    h = sources_digest()
    h.update(json.dumps(versions, sort_keys=True).encode())
    return h.hexdigest()[:16]


def download(packages, dest):
    dest.mkdir(parents=True, exist_ok=True)
    os.chmod(dest, 0o777)  # apt-get download's sandbox user writes there
    subprocess.run(["apt-get", "download", "-qq", *packages], cwd=dest, check=True,
                   stdout=subprocess.DEVNULL)
    return sorted(dest.glob("*.deb"))


def run_bytes(argv, data):
    return subprocess.run(argv, input=data, check=True, capture_output=True).stdout


def elf_needed(path):
    """(interpreter, [sonames]) of an ELF file, or None when it is not one."""
    with open(path, "rb") as fh:
        if fh.read(4) != b"\x7fELF":
            return None
    out = run(["readelf", "-d", "-l", "-W", str(path)])
    interp = re.search(r"Requesting program interpreter: (\S+)\]", out)
    return (interp.group(1) if interp else None), re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", out)


class Tree:
    """The initramfs being assembled (merged /usr: /bin, /sbin, /lib, /lib64 link into /usr)."""

    def __init__(self, root, staging):
        self.root, self.staging = root, staging
        for d in ["usr/bin", "usr/sbin", "usr/lib/x86_64-linux-gnu", "usr/lib64"]:
            (root / d).mkdir(parents=True, exist_ok=True)
        for link, target in [("bin", "usr/bin"), ("sbin", "usr/sbin"), ("lib", "usr/lib"), ("lib64", "usr/lib64")]:
            (root / link).symlink_to(target)
        self.libs = set()

    def copy(self, rel, dest_rel=None):
        src = self.staging / rel
        dest = self.root / (dest_rel or rel)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dest, symlinks=True, dirs_exist_ok=True)
        else:
            shutil.copy2(src, dest, follow_symlinks=True)
        return dest

    def find_lib(self, soname):
        for d in LIB_DIRS:
            if (self.staging / d / soname).exists():
                return self.staging / d / soname
        return None

    def add_libraries(self, files):
        """Copy the shared libraries the ELF files need, recursively; missing ones are an error."""
        todo, missing = list(files), set()
        while todo:
            info = elf_needed(todo.pop())
            if not info:
                continue
            interp, needed = info
            if interp and interp not in self.libs:
                self.libs.add(interp)
                dest = self.root / "usr" / interp.lstrip("/").removeprefix("usr/")
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(self.staging / interp.lstrip("/"), dest)
            for soname in needed:
                if soname in self.libs:
                    continue
                src = self.find_lib(soname)
                if src is None:
                    missing.add(soname)
                    continue
                self.libs.add(soname)
                dest = self.root / "usr/lib/x86_64-linux-gnu" / soname
                shutil.copy2(src, dest, follow_symlinks=True)
                todo.append(dest)
        return missing


def module_depends(ko):
    m = re.search(rb"\0depends=([^\0]*)\0", b"\0" + ko.read_bytes())
    return [d for d in m.group(1).decode().split(",") if d] if m else []


def add_modules(tree, kver):
    """Copy MODULES and their dependencies; write /lib/modules/KVER/load.list in load order."""
    base = tree.staging / "lib/modules" / kver
    index = {p.stem.replace("-", "_"): p for p in base.rglob("*.ko")}
    builtin = {Path(l).stem.replace("-", "_") for l in (base / "modules.builtin").read_text().split()}
    order = []

    def visit(name):
        name = name.replace("-", "_")
        if name in order or name in builtin:
            return
        if name not in index:
            sys.exit(f"lab-guest: kernel {kver} has no module {name}")
        for dep in module_depends(index[name]):
            visit(dep)
        order.append(name)

    for name in MODULES:
        visit(name)
    lines = []
    for name in order:
        rel = index[name].relative_to(tree.staging)
        tree.copy(rel, Path("usr") / rel)  # lib/ -> usr/lib (merged /usr)
        lines.append("/" + str(rel))
    (tree.root / "usr/lib/modules" / kver / "load.list").write_text("\n".join(lines) + "\n")
    return order


def add_python(tree, pyver, minimal):
    """python3-minimal (the top-level names in MINIMAL) plus PY_STDLIB_EXTRA from the full standard
    library; no tests, no bytecode. Returns the Python program and its extension modules."""
    lib = f"usr/lib/python{pyver}"
    tree.copy(f"usr/bin/python{pyver}")
    (tree.root / "usr/bin/python3").symlink_to(f"python{pyver}")
    skip = shutil.ignore_patterns("__pycache__", "test", "tests", "idle_test")
    src = tree.staging / lib
    for entry in sorted(src.iterdir()):
        name = entry.name.removesuffix(".py")
        if entry.name == "lib-dynload":
            continue
        keep = (entry.suffix == ".py" and name in PY_STDLIB_EXTRA) or (entry.is_dir() and name in PY_STDLIB_EXTRA)
        if keep or entry.name in minimal:
            dest = tree.root / lib / entry.name
            if entry.is_dir():
                shutil.copytree(entry, dest, ignore=skip, dirs_exist_ok=True)
            else:
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(entry, dest)
    keep = set(PY_ENCODINGS)
    for codec in (tree.root / lib / "encodings").glob("*.py"):
        if codec.stem not in keep:
            codec.unlink()
    dynload = []
    for so in sorted((src / "lib-dynload").glob("*.so")):
        if so.name.split(".")[0] in PY_DYNLOAD_EXTRA:
            dynload.append(tree.copy(so.relative_to(tree.staging)))
    return [tree.root / f"usr/bin/python{pyver}"] + dynload


def compile_python(root, pyver):
    """Byte-compile the guest's Python files with the guest's own Python (Debian builds them at
    install time, which never happens here): an import from source costs seconds under TCG."""
    loader = root / "usr/lib64/ld-linux-x86-64.so.2"
    env = {"PYTHONHOME": str(root / "usr"), "PATH": "/usr/bin:/bin"}
    python = [str(loader), "--library-path", str(root / "usr/lib/x86_64-linux-gnu"),
              str(root / f"usr/bin/python{pyver}"),
              "-S", "-m", "compileall", "-q", "-s", str(root), "-p", "/", "--invalidation-mode", "unchecked-hash"]
    # The standard library goes sourceless (.pyc beside where the .py was: half the RAM the root
    # file system takes); our own cloudinit.py keeps its source, with its cache in __pycache__.
    stdlib = root / f"usr/lib/python{pyver}"
    for argv in (python + ["-b", str(stdlib)], python + [str(root / "usr/lib/virtops")]):
        proc = subprocess.run(argv, env=env, capture_output=True, text=True)
        if proc.returncode:
            output = (proc.stdout + proc.stderr).strip()[-600:]
            sys.exit(f"lab-guest: byte-compiling the guest's Python failed: {output}")
    for source in stdlib.rglob("*.py"):
        source.unlink()


def python_minimal(debs):
    """(version, top-level names under /usr/lib/pythonX.Y that libpythonX.Y-minimal ships)."""
    for deb in debs:
        m = re.match(r"libpython(3\.\d+)-minimal_", deb.name)
        if m:
            pyver = m.group(1)
            listing = run(["dpkg-deb", "-c", str(deb)])
            return pyver, set(re.findall(rf"\./usr/lib/python{re.escape(pyver)}/([^/\s]+)", listing))
    sys.exit("lab-guest: no libpython3.X-minimal package downloaded")


def build(out, force=False):
    versions, kernel_pkg = resolve_packages()
    key = cache_key(versions)
    dest = out / key
    if (dest / "manifest.json").exists() and not force:
        return dest
    with tempfile.TemporaryDirectory(prefix="lab-guest-") as tmp:
        tmp = Path(tmp)
        os.chmod(tmp, 0o755)  # apt-get download's sandbox user reads through it
        debs = download(list(versions), tmp / "debs")
        staging = tmp / "staging"
        for deb in debs:
            run(["dpkg-deb", "-x", str(deb), str(staging)])
        pyver, minimal = python_minimal(debs)
        kver = kernel_pkg.removeprefix("linux-image-")
        root = tmp / "root"
        tree = Tree(root, staging)
        programs = [tree.copy("bin/busybox", "usr/bin/busybox"), tree.copy("usr/sbin/dropbear"),
                    tree.copy("usr/bin/dropbearkey"), tree.copy("usr/sbin/qemu-ga")]
        programs += add_python(tree, pyver, minimal)
        missing = tree.add_libraries(programs)
        if missing:
            sys.exit(f"lab-guest: no package downloaded ships {', '.join(sorted(missing))}")
        # busybox's applets as links (only where no real program of ours sits).
        for applet in run([str(root / "usr/bin/busybox"), "--list-full"]).split():
            link = root / (applet if applet.startswith("usr/") else "usr/" + applet)
            if not link.exists() and not link.is_symlink():
                link.parent.mkdir(parents=True, exist_ok=True)
                link.symlink_to("/usr/bin/busybox")
        modules = add_modules(tree, kver)
        shutil.copytree(ROOTFS, root, symlinks=True, dirs_exist_ok=True)
        compile_python(root, pyver)
        (root / "init").unlink(missing_ok=True)
        (root / "init").symlink_to("/usr/bin/busybox")
        release = run(["sh", "-c", ". /etc/os-release; echo $VERSION_ID"]).strip()
        write_os_release(root, release, versions, kernel_pkg)
        for d in ["dev", "proc", "sys", "run", "tmp", "var/log", "root", "home", "mnt", "etc/dropbear"]:
            (root / d).mkdir(parents=True, exist_ok=True)
        (root / "var/run").symlink_to("/run")
        os.chmod(root / "tmp", 0o1777)
        os.chmod(root / "root", 0o700)
        os.chmod(root / "etc/shadow", 0o600)
        staging_kernel = staging / f"boot/vmlinuz-{kver}"
        part = out / f".{key}.partial"
        shutil.rmtree(part, ignore_errors=True)
        part.mkdir(parents=True)
        shutil.copy2(staging_kernel, part / "vmlinuz")
        files = subprocess.run(["find", ".", "-mindepth", "1"], cwd=root, check=True, capture_output=True).stdout
        cpio = subprocess.run(["cpio", "-o", "-H", "newc", "--quiet", "-R", "0:0"], cwd=root, input=files,
                              check=True, capture_output=True).stdout
        # zstd: the emulated CPU unpacks it several times faster than gzip.
        (part / "initramfs.cpio.zst").write_bytes(run_bytes(["zstd", "-q", "-19", "-c"], cpio))
        manifest = {"key": key, "kernel_release": kver, "debian_release": release, "packages": versions,
                    "modules": modules, "initramfs_bytes": (part / "initramfs.cpio.zst").stat().st_size,
                    "kernel": "vmlinuz", "initramfs": "initramfs.cpio.zst"}
        (part / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        shutil.rmtree(dest, ignore_errors=True)
        part.rename(dest)
    current = out / "current"
    current.unlink(missing_ok=True)
    current.symlink_to(key)
    # Older builds go (a running guest keeps its open files); the folder holds one build.
    for old in out.iterdir():
        if old.is_dir() and not old.is_symlink() and old.name != key and re.fullmatch(r"[0-9a-f]{16}", old.name):
            shutil.rmtree(old, ignore_errors=True)
    return dest


def write_os_release(root, release, versions, kernel_pkg):
    """What the guest really is: our build of Debian packages, not Debian itself."""
    text = (f'PRETTY_NAME="virtops lab guest (Debian {release} packages)"\n'
            'NAME="virtops lab guest"\n'
            f'VERSION_ID="{release}"\n'
            f'VERSION="{release} (busybox {versions["busybox-static"]}, kernel {versions[kernel_pkg]})"\n'
            "ID=virtops-lab-guest\n"
            "ID_LIKE=debian\n")
    (root / "etc/os-release").write_text(text)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--force", action="store_true", help="rebuild even when the cache matches")
    args = parser.parse_args(argv)
    for tool in ["apt-get", "dpkg-deb", "readelf", "cpio", "zstd"]:
        if not shutil.which(tool):
            sys.exit(f"lab-guest: `{tool}` is missing (make debs installs it)")
    print(build(args.out.resolve(), args.force))
    return 0


if __name__ == "__main__":
    sys.exit(main())
