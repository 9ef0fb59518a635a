"""A small cloud-init for the virtops lab guest (NoCloud and ConfigDrive), run once at boot.

Reads the disk labelled cidata (NoCloud: user-data, meta-data) or config-2 (ConfigDrive:
openstack/latest/user_data, meta_data.json) and applies this subset of #cloud-config, in
cloud-init's order: bootcmd; write_files (not deferred); hostname / fqdn (else meta-data's
local-hostname / hostname); users (name, gecos, groups, primary_group, shell, homedir, uid, passwd,
hashed_passwd, plain_text_passwd, lock_passwd, ssh_authorized_keys; "default" is the user
`virtops`, renamed or extended by `user:`); password, chpasswd (list or users; text, hash or
RANDOM; expire is ignored); ssh_authorized_keys (the default user's, plus meta-data's
public-keys); ssh_pwauth; write_files with defer: true; runcmd (after the network is up, in the
background), and a user-data that is a script (#!). Other keys are named on the console as
ignored. Network configuration is DHCP on eth0 (what KubeVirt's masquerade and bridge bindings
give); networkData is read but not applied. The YAML reader understands block mappings and
sequences, flow [..] and {..}, quoted and plain scalars, and | / > block scalars, which is what
cloud-config files use. docs/lab.md ("Real guests") has the same list as a table.
"""
# Imports are few and light on purpose: this runs before the login prompt, and every module
# Python imports costs tens of milliseconds on an emulated CPU (subprocess, base64 and json pull
# in re, enum, threading ...). So: os-level fork/exec, binascii, and json only when needed.
import binascii
import os
import sys

LOG = "/var/log/cloud-init.log"
STATE = "/var/lib/cloud"
DEFAULT_USER = {"name": "virtops", "gecos": "virtops lab guest user", "groups": ["wheel", "adm", "users"],
                "shell": "/bin/sh", "lock_passwd": True}
KNOWN = {"bootcmd", "hostname", "fqdn", "prefer_fqdn_over_hostname", "users", "user", "password", "chpasswd",
         "ssh_authorized_keys", "ssh_pwauth", "write_files", "runcmd", "manage_etc_hosts",
         "preserve_hostname", "disable_root"}


# ----------------------------------------------------------------------------------- YAML subset
class YamlError(ValueError):
    pass


def _strip_comment(line):
    quote = None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"" and (i == 0 or line[i - 1] in " \t[{,:-"):
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[:i].rstrip()
    return line.rstrip()


def _scalar(text):
    text = text.strip()
    if not text:
        return None
    if text[0] in "[{":
        value, rest = _flow(text, 0)
        if text[rest:].strip():
            raise YamlError(f"unexpected text after {text[:rest]!r}")
        return value
    if text[0] == "'" and text.endswith("'") and len(text) > 1:
        return text[1:-1].replace("''", "'")
    if text[0] == '"' and text.endswith('"') and len(text) > 1:
        import json  # noqa: PLC0415  (rare: see the note at the imports)
        return json.loads(text)
    low = text.lower()
    if low in ("null", "~"):
        return None
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    try:
        return int(text, 8) if len(text) > 1 and text[0] == "0" and text.isdigit() else int(text)
    except ValueError:
        return text


def _flow(text, i):
    """Parse a flow collection or scalar starting at text[i]; returns (value, next index)."""
    while text[i] == " ":
        i += 1
    if text[i] in "[{":
        closing, items, mapping = ("]" if text[i] == "[" else "}"), [], {}
        i += 1
        while True:
            while i < len(text) and text[i] in " ,":
                i += 1
            if i >= len(text):
                raise YamlError("unclosed flow collection")
            if text[i] == closing:
                return (items if closing == "]" else mapping), i + 1
            if closing == "}":
                key, i = _flow_scalar(text, i, ":")
                value, i = _flow(text, i + 1)
                mapping[key] = value
            else:
                value, i = _flow(text, i)
                items.append(value)
    return _flow_scalar(text, i, ",]}")


def _flow_scalar(text, i, stops):
    if text[i] in "'\"":
        quote, j = text[i], i + 1
        while j < len(text) and not (text[j] == quote and text[j - 1] != "\\"):
            j += 1
        return _scalar(text[i:j + 1]), j + 1
    j = i
    while j < len(text) and text[j] not in stops:
        j += 1
    return _scalar(text[i:j]), j


def _split_key(content):
    """'key: value' -> (key, value text); None when the line is not a mapping entry."""
    quote = None
    for i, ch in enumerate(content):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"" and i == 0:
            quote = ch
        elif ch == ":" and (i + 1 == len(content) or content[i + 1] == " "):
            return _scalar(content[:i]) if content[0] in "'\"" else content[:i].strip(), content[i + 1:].strip()
        elif ch in "[{" and i == 0:
            return None
    return None


def _indent(line):
    return len(line) - len(line.lstrip(" "))


def _block_scalar(header, lines, i, parent):
    style, chomp = header[0], ("-" if "-" in header else "+" if "+" in header else "")
    body, block = [], None
    while i < len(lines):
        raw = lines[i][0]
        if raw.strip() and _indent(raw) <= parent:
            break
        if raw.strip() and block is None:
            block = _indent(raw)
        body.append(raw[block:] if block is not None and raw.strip() else "")
        i += 1
    while body and not body[-1] and chomp != "+":
        body.pop()
    if style == "|":
        text = "\n".join(body)
    else:
        text, prev_empty = "", True
        for line in body:
            if not line:
                text += "\n"
                prev_empty = True
            else:
                text += ("" if prev_empty else " ") + line
                prev_empty = False
    return text + ("" if chomp == "-" or not body else "\n"), i


def _value_after(rest, lines, i, indent):
    """The value of 'key: REST' (or '- REST') whose line indent is INDENT; lines[i] is the next line."""
    if rest[:1] in ("|", ">"):
        return _block_scalar(rest, lines, i, indent)
    if rest:
        return _scalar(rest), i
    if i < len(lines):
        nxt = lines[i][0]
        if _indent(nxt) > indent or (_indent(nxt) == indent and nxt.lstrip().startswith("- ")):
            return _block(lines, i, _indent(nxt))
    return None, i


def _block(lines, i, indent):
    first = lines[i][0].lstrip()
    if first == "-" or first.startswith("- "):
        items = []
        while i < len(lines) and _indent(lines[i][0]) == indent and lines[i][0].lstrip()[:2] in ("- ", "-"):
            content = lines[i][0][indent + 1:].lstrip(" ")
            inner = len(lines[i][0]) - len(content)  # the column where the item's content starts
            if content and _split_key(content) and content[0] not in "[{'\"":
                lines[i] = (" " * inner + content, lines[i][1])
                value, i = _block(lines, i, inner)
            else:
                value, i = _value_after(content, lines, i + 1, indent)
            items.append(value)
        return items, i
    mapping = {}
    while i < len(lines) and _indent(lines[i][0]) == indent:
        content = lines[i][0].strip()
        if content.startswith("- "):
            break
        split = _split_key(content)
        if not split:
            raise YamlError(f"line {lines[i][1]}: expected 'key: value', got {content!r}")
        key, rest = split
        mapping[key], i = _value_after(rest, lines, i + 1, indent)
    if i < len(lines) and _indent(lines[i][0]) > indent:
        raise YamlError(f"line {lines[i][1]}: unexpected indentation")
    return mapping, i


def load_yaml(text):
    lines = []
    for number, raw in enumerate(text.replace("\t", "    ").splitlines(), 1):
        if raw.strip() in ("---", "...") and not raw.startswith(" "):
            continue
        lines.append((raw, number))
    # Comments and blank lines go, except inside block scalars (kept by _block_scalar's raw view).
    kept, in_block, block_parent = [], False, 0
    for raw, number in lines:
        if in_block and (not raw.strip() or _indent(raw) > block_parent):
            kept.append((raw, number))
            continue
        in_block = False
        line = _strip_comment(raw)
        if not line.strip():
            continue
        kept.append((line, number))
        stripped = line.rstrip()
        opens_block = ": " in stripped or stripped.lstrip().startswith("- ")
        if opens_block and stripped.endswith(("|", "|-", "|+", ">", ">-", ">+")):
            in_block, block_parent = True, _indent(line)
    if not kept:
        return None
    value, i = _block(kept, 0, _indent(kept[0][0]))
    if i < len(kept):
        raise YamlError(f"line {kept[i][1]}: unexpected text {kept[i][0].strip()!r}")
    return value


# ---------------------------------------------------------------------------------- data sources
def log(msg):
    line = f"cloud-init: {msg}"
    print(line, flush=True)
    with open(LOG, "a") as fh:
        fh.write(line + "\n")


class Done:
    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def spawn(argv, stdin=None, stdout=None, stderr=None, detach=False):
    """fork + exec with the given file descriptors (os-level: no subprocess module)."""
    pid = os.fork()
    if pid == 0:
        try:
            if detach:
                os.setsid()
            for fd, target in ((stdin, 0), (stdout, 1), (stderr, 2)):
                if fd is not None:
                    os.dup2(fd, target)
            os.execvp(argv[0], argv)
        finally:
            os._exit(127)
    return pid


def sh(argv, data=None, check=True):
    """Run ARGV with DATA on its stdin; its exit status and output (the output is small)."""
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    pid = spawn(argv, in_r, out_w, err_w)
    for fd in (in_r, out_w, err_w):
        os.close(fd)
    if data:
        os.write(in_w, data.encode())
    os.close(in_w)
    out, err = [], []
    for fd, sink in ((out_r, out), (err_r, err)):
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            sink.append(chunk)
        os.close(fd)
    status = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    proc = Done(status, b"".join(out).decode(errors="replace"), b"".join(err).decode(errors="replace"))
    if check and proc.returncode:
        log(f"{' '.join(argv[:2])} failed: {proc.stderr.strip() or proc.returncode}")
    return proc


def find_source():
    """(kind, mount point) of the first cidata/config-2 disk, mounted read-only; None without one."""
    for label in ("cidata", "CIDATA", "config-2", "CONFIG-2"):
        dev = sh(["findfs", f"LABEL={label}"], check=False).stdout.strip()
        if dev:
            kind = label.lower()
            mnt = "/run/virtops/" + kind
            os.makedirs(mnt, exist_ok=True)
            if sh(["mount", "-o", "ro", dev, mnt]).returncode == 0:
                return kind, mnt
    return None


def read(path):
    try:
        with open(path, "rb") as fh:
            return fh.read().decode("utf-8", "replace")
    except OSError:
        return None


def load_source(kind, mnt):
    """(user-data text, meta-data dict, network-data text)."""
    if kind == "cidata":
        meta = read(mnt + "/meta-data") or ""
        try:
            meta = load_yaml(meta) or {}
        except YamlError:
            meta = {}
        return read(mnt + "/user-data") or "", meta if isinstance(meta, dict) else {}, read(mnt + "/network-config")
    base = mnt + "/openstack/latest/"
    try:
        import json  # noqa: PLC0415
        meta = json.loads(read(base + "meta_data.json") or "{}")
    except ValueError:
        meta = {}
    if isinstance(meta.get("public_keys"), dict):
        meta["public-keys"] = list(meta["public_keys"].values())
    meta.setdefault("local-hostname", meta.get("hostname"))
    meta.setdefault("instance-id", meta.get("uuid"))
    return read(base + "user_data") or "", meta, read(base + "network_data.json")


# ---------------------------------------------------------------------------------- config steps
def as_list(value):
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, dict):   # KubeVirt's meta-data public-keys: {"0": key, ...}
        return [value[k] for k in sorted(value, key=lambda k: (len(str(k)), str(k)))]
    return list(value)


def set_hostname(cfg, meta):
    name = cfg.get("fqdn") if cfg.get("prefer_fqdn_over_hostname") else None
    name = name or cfg.get("hostname") or (cfg.get("fqdn") or "").split(".")[0] \
        or meta.get("local-hostname") or meta.get("hostname")
    if not name or cfg.get("preserve_hostname"):
        return
    name = str(name)
    with open("/etc/hostname", "w") as fh:
        fh.write(name + "\n")
    sh(["hostname", name])
    fqdn = cfg.get("fqdn")
    with open("/etc/hosts", "a") as fh:
        fh.write(f"127.0.1.1 {fqdn + ' ' if fqdn else ''}{name}\n")
    log(f"hostname {name}")


def table(name):
    """/etc/NAME as a list of field lists (passwd, group, shadow)."""
    with open(f"/etc/{name}") as fh:
        return [line.rstrip("\n").split(":") for line in fh if line.strip()]


def save(name, rows):
    with open(f"/etc/{name}", "w") as fh:
        fh.write("".join(":".join(row) + "\n" for row in rows))


def free_id(rows, low):
    used = {int(row[2]) for row in rows if row[2].isdigit()}
    return next(i for i in range(low, 60000) if i not in used)


def ensure_group(group, member=None, gid=None):
    rows = table("group")
    row = next((r for r in rows if r[0] == group), None)
    if row is None:
        row = [group, "x", str(gid if gid is not None else free_id(rows, 1000)), ""]
        rows.append(row)
    members = [m for m in row[3].split(",") if m]
    if member and member not in members:
        row[3] = ",".join(members + [member])
    save("group", rows)
    return int(row[2])


def set_hash(name, hashed):
    rows = table("shadow")
    for row in rows:
        if row[0] == name:
            row[1] = hashed
    save("shadow", rows)


def hash_password(password):
    """SHA-512 crypt, which busybox login and dropbear both check."""
    out = sh(["mkpasswd", "-m", "sha512", "-s"], password + "\n").stdout.strip()
    if not out.startswith("$6$"):
        raise RuntimeError("mkpasswd gave no SHA-512 hash")
    return out


def lock(name):
    rows = table("shadow")
    for row in rows:
        if row[0] == name and not row[1].startswith("!"):
            row[1] = "!" + row[1]
    save("shadow", rows)


def ensure_user(user):
    name = str(user["name"])
    passwd = table("passwd")
    if not any(row[0] == name for row in passwd):
        uid = int(user["uid"]) if user.get("uid") is not None else free_id(passwd, 1000)
        gid = ensure_group(str(user.get("primary_group") or name), gid=uid)
        home = str(user.get("homedir") or f"/home/{name}")
        passwd.append([name, "x", str(uid), str(gid), str(user.get("gecos") or ""), home,
                       str(user.get("shell") or "/bin/sh")])
        save("passwd", passwd)
        save("shadow", table("shadow") + [[name, "!", "19000", "0", "99999", "7", "", "", ""]])
        os.makedirs(home, mode=0o755, exist_ok=True)
        os.chown(home, uid, gid)
    for group in as_list(user.get("groups")):
        ensure_group(str(group), member=name)
    hashed = user.get("hashed_passwd") or user.get("passwd")
    if hashed:
        set_hash(name, str(hashed))
    elif user.get("plain_text_passwd"):
        set_hash(name, hash_password(str(user["plain_text_passwd"])))
    if user.get("lock_passwd", True):
        lock(name)
    add_keys(name, user.get("ssh_authorized_keys"))
    log(f"user {name}")


def home_of(name):
    entry = next((row for row in table("passwd") if row[0] == name), None)
    return (entry[5], int(entry[2]), int(entry[3])) if entry else None


def add_keys(name, keys):
    keys = [str(k).strip() for k in as_list(keys) if str(k).strip()] if not isinstance(keys, str) else [keys.strip()]
    where = home_of(name)
    if not keys or not where:
        return
    home, uid, gid = where
    ssh_dir = home + "/.ssh"
    os.makedirs(ssh_dir, mode=0o700, exist_ok=True)
    path = ssh_dir + "/authorized_keys"
    with open(path, "a") as fh:
        fh.write("".join(k + "\n" for k in keys))
    for p in (ssh_dir, path):
        os.chown(p, uid, gid)
    os.chmod(path, 0o600)


def default_user(cfg):
    user = dict(DEFAULT_USER)
    if isinstance(cfg.get("user"), str):
        user["name"] = cfg["user"]
    elif isinstance(cfg.get("user"), dict):
        user.update(cfg["user"])
    return user


def apply_users(cfg, meta):
    users = cfg.get("users", ["default"])
    users = [users] if isinstance(users, (str, dict)) else list(users or [])
    default = default_user(cfg)
    for entry in users:
        if entry == "default":
            ensure_user(default)
        elif isinstance(entry, dict) and entry.get("name"):
            ensure_user(entry)
        elif isinstance(entry, str):
            for name in as_list(entry):
                ensure_user(default if name == "default" else {"name": name})
    if "default" in users or not users:
        add_keys(default["name"], as_list(cfg.get("ssh_authorized_keys")) + as_list(meta.get("public-keys")))
    return default["name"]


def apply_passwords(cfg, default_name):
    plain, hashed = [], []
    if cfg.get("password") is not None:
        plain.append((default_name, str(cfg["password"])))
    chp = cfg.get("chpasswd") or {}
    entries = []
    if isinstance(chp.get("list"), str):
        entries = [line.split(":", 1) for line in chp["list"].splitlines() if ":" in line]
    elif isinstance(chp.get("list"), list):
        entries = [str(line).split(":", 1) for line in chp["list"] if ":" in str(line)]
    for name, pw in entries:
        if pw in ("R", "RANDOM"):
            plain.append((name, None))
        elif pw.startswith("$") and pw.count("$") >= 3:
            hashed.append((name, pw))
        else:
            plain.append((name, pw))
    for user in chp.get("users") or []:
        kind = str(user.get("type", "hash" if str(user.get("password", "")).startswith("$") else "text")).lower()
        password = None if kind == "random" else str(user.get("password"))
        (hashed if kind == "hash" else plain).append((user["name"], password))
    for name, pw in plain:
        if pw is None:
            pw = binascii.hexlify(os.urandom(8)).decode()
            log(f"random password for {name}: {pw}")  # as cloud-init prints it on the console
        set_hash(name, hash_password(pw))
    for name, pw in hashed:
        set_hash(name, pw)
    if plain or hashed:
        log(f"passwords set for {', '.join(sorted({n for n, _ in plain + hashed}))}")
    if cfg.get("ssh_pwauth") is False:
        open("/run/virtops/ssh-no-password", "w").close()


def decode_content(item):
    content = item.get("content") or ""
    encoding = str(item.get("encoding") or "text").lower()
    data = content.encode() if isinstance(content, str) else str(content).encode()
    if encoding in ("b64", "base64", "gz+b64", "gzip+base64", "gz+base64", "gzip+b64"):
        data = binascii.a2b_base64(data)
    if encoding.startswith("gz"):
        import zlib  # noqa: PLC0415
        data = zlib.decompress(data, 47)
    return data


def write_files(cfg, deferred):
    for item in cfg.get("write_files") or []:
        if not isinstance(item, dict) or not item.get("path") or bool(item.get("defer")) != deferred:
            continue
        path = str(item["path"])
        os.makedirs(os.path.dirname(path) or "/", exist_ok=True)
        with open(path, "ab" if item.get("append") else "wb") as fh:
            fh.write(decode_content(item))
        perms = item.get("permissions")
        os.chmod(path, int(str(perms), 8) if isinstance(perms, str) else perms if isinstance(perms, int) else 0o644)
        owner = str(item.get("owner") or "root:root")
        sh(["chown", owner, path])
        log(f"wrote {path}")


def shell_line(cmd):
    if isinstance(cmd, list):
        return " ".join("'" + str(a).replace("'", "'\\''") + "'" for a in cmd)
    return str(cmd)


def run_bootcmd(cfg):
    for cmd in cfg.get("bootcmd") or []:
        sh(["sh", "-c", shell_line(cmd)])


def start_final(cfg, script):
    """runcmd (and a user-data script) after the network, detached; boot-finished marks the end."""
    os.makedirs(STATE + "/instance/scripts", exist_ok=True)
    lines = ["#!/bin/sh"] + [shell_line(c) for c in cfg.get("runcmd") or []]
    runcmd = STATE + "/instance/scripts/runcmd"
    with open(runcmd, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    os.chmod(runcmd, 0o700)
    steps = [runcmd]
    if script:
        part = STATE + "/instance/scripts/part-001"
        with open(part, "w") as fh:
            fh.write(script)
        os.chmod(part, 0o700)
        steps.append(part)
    final = " ; ".join(steps) + f" ; date > {STATE}/instance/boot-finished"
    out = os.open("/var/log/cloud-init-output.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    null = os.open("/dev/null", os.O_RDONLY)
    spawn(["sh", "-c", final], null, out, out, detach=True)
    os.close(out)
    os.close(null)


def main():
    os.makedirs(STATE + "/instance", exist_ok=True)
    os.makedirs("/run/virtops", exist_ok=True)
    source = find_source()
    if not source:
        log("no cidata or config-2 disk: nothing to apply")
        return 0
    user_data, meta, _network = load_source(*source)
    cfg, script = {}, None
    if user_data.startswith("#cloud-config"):
        try:
            cfg = load_yaml(user_data) or {}
        except YamlError as exc:
            log(f"user-data is not YAML this guest can read ({exc}); applying meta-data only")
        if not isinstance(cfg, dict):
            cfg = {}
    elif user_data.startswith("#!"):
        script = user_data
    elif user_data.strip():
        log("user-data is neither #cloud-config nor a #! script: ignored")
    ignored = sorted(str(k) for k in cfg if k not in KNOWN)
    if ignored:
        log(f"not supported by this guest, ignored: {', '.join(ignored)}")
    # cloud-init's module order: bootcmd, write_files, set_hostname, users_groups + ssh,
    # set_passwords, then the final stage's write_files_deferred and runcmd.
    run_bootcmd(cfg)
    write_files(cfg, deferred=False)
    set_hostname(cfg, meta)
    default_name = apply_users(cfg, meta)
    apply_passwords(cfg, default_name)
    write_files(cfg, deferred=True)
    start_final(cfg, script)
    with open(STATE + "/instance/instance-id", "w") as fh:
        fh.write(str(meta.get("instance-id") or "") + "\n")
    log(f"applied {source[0]} ({meta.get('instance-id') or 'no instance-id'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
