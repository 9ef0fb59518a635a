"""Run ansible-playbook against the lab with this checkout as the collection virtops.kubevirt.

Used by the lab tests that drive the collection as users do (bad-input matrix, secrets, TLS, data
safety). The collection is found where tests/run-integration.sh puts it: a symlink
.cache/collections/ansible_collections/virtops/kubevirt -> the repository.
"""
import os
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
COLLECTIONS = REPO / ".cache" / "collections"
PYTHON = sys.executable
ANSIBLE_PLAYBOOK = str(Path(PYTHON).parent / "ansible-playbook")


def collection_path():
    """The ANSIBLE_COLLECTIONS_PATH that holds this checkout as virtops.kubevirt."""
    link = COLLECTIONS / "ansible_collections" / "virtops" / "kubevirt"
    link.parent.mkdir(parents=True, exist_ok=True)
    if not (link.is_symlink() and os.path.realpath(link) == str(REPO)):
        tmp = link.with_name("kubevirt.tmp-%d" % os.getpid())
        if tmp.is_symlink():
            tmp.unlink()
        tmp.symlink_to(REPO)
        os.replace(tmp, link)
    return str(COLLECTIONS)


def clean_environ():
    """os.environ without K8S_AUTH_*/ANSIBLE_* from outside, but with Ansible's home, temp, async and ssh
    control folders in the checkout (tests/conftest.py), never ~/.ansible, ~/.ansible_async or ~/.ssh."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("K8S_AUTH_", "ANSIBLE_"))}
    env.update({k: os.environ[k] for k in ("ANSIBLE_HOME", "ANSIBLE_REMOTE_TMP", "ANSIBLE_ASYNC_DIR",
                                           "ANSIBLE_SSH_CONTROL_PATH_DIR")})
    # ssh's known hosts in Ansible's home too, never ~/.ssh
    env["ANSIBLE_SSH_EXTRA_ARGS"] = "-o UserKnownHostsFile=%s" % os.path.join(os.environ["ANSIBLE_HOME"], "known_hosts")
    return env


def ansible_env(kubeconfig=None, **extra):
    """The environment for ansible-playbook: our collection, no colors, no K8S_AUTH_* from outside."""
    env = clean_environ()
    env.update(
        ANSIBLE_COLLECTIONS_PATH=collection_path(),
        ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false",
        ANSIBLE_LOCALHOST_WARNING="false",
        ANSIBLE_INVENTORY_UNPARSED_WARNING="false",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_STDOUT_CALLBACK="default",
        ANSIBLE_RETRY_FILES_ENABLED="false",
        ANSIBLE_PIPELINING="true",
        ANSIBLE_PYTHON_INTERPRETER=PYTHON,
        PATH=str(Path(PYTHON).parent) + os.pathsep + os.environ.get("PATH", ""),
    )
    if kubeconfig is not None:
        env["KUBECONFIG"] = str(kubeconfig)
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run_playbook(workdir, plays, inventory=None, env=None, args=(), timeout=600):
    """Write ``plays`` (a list, dumped as YAML) and ``inventory`` (a dict) into ``workdir``, run them.

    Returns the CompletedProcess (stdout and stderr as text).
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    playbook = workdir / "playbook.yml"
    playbook.write_text(yaml.safe_dump(plays, sort_keys=False, width=1000))
    cmd = [ANSIBLE_PLAYBOOK, str(playbook)]
    if inventory is not None:
        inv = workdir / "inventory.yml"
        inv.write_text(yaml.safe_dump(inventory, sort_keys=False, width=1000))
        cmd += ["-i", str(inv)]
    else:
        cmd += ["-i", "localhost,", "-c", "local"]
    cmd += list(args)
    return subprocess.run(cmd, cwd=str(workdir), env=env if env is not None else ansible_env(),
                          capture_output=True, text=True, timeout=timeout, check=False)
