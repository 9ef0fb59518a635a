"""virt-launcher's access credential manager for real guests: a VMI's `spec.accessCredentials`.

What KubeVirt does (pkg/virt-launcher/virtwrap/access-credentials, pkg/cloud-init), and the lab with it:

- sshPublicKey + qemuGuestAgent {users}: every value of the Secret holds keys, one per line; each
  user's ~/.ssh/authorized_keys is set to exactly the keys of that user's Secrets (libvirt's
  AuthorizedSSHKeysSet without flags = qemu-ga's guest-ssh-add-authorized-keys with reset);
- userPassword + qemuGuestAgent: each key of the Secret is a user name, its value the password
  (guest-set-user-password, not crypted);
- the Secrets are re-read while the guest runs: virt-launcher watches their mounted copies and syncs
  within resyncCheckIntervalSeconds (15 s) of a change, and every 5 minutes anyway; the lab reads them
  every SYNC_EVERY s and applies only what changed (or failed), and everything every FORCE_RESYNC s;
- the result is the VMI's condition AccessCredentialsSynchronized: True with no message, or False
  with the last error in KubeVirt's words ("Guest agent is offline", "Error encountered writing ssh
  pub key access credentials for user [u]: ..."), and an event AccessCredentialsSyncSuccess /
  AccessCredentialsSyncFailed when it changes. Only VMIs with a qemuGuestAgent credential get it;
- sshPublicKey + noCloud / configDrive: the keys go into the cloud-init disk's meta-data at boot
  (KubeVirt: NoCloud `public-keys`, ConfigDrive `public_keys`, both {"0": key, ...}); they do not
  change while the guest runs. The lab writes them as KubeVirt does; the lab guest's cloud-init reads
  both maps.

Simulated guests have no agent to write through: the manager runs for real guests only
(lab/simulator/realguest.py). Hooks: the VMI controller's running refresh calls `condition()` (which
also starts the per-VMI sync), realguest.Guests.launch calls `boot_meta_data()`.
"""
import asyncio
import base64
import json
import logging
import time

from .kube import ApiError, Resource
from .util import dig

log = logging.getLogger("simulator.credentials")

SECRET = Resource("", "v1", "secrets", "Secret")
CONDITION = "AccessCredentialsSynchronized"
SYNC_EVERY = 3.0          # s between reads of the Secrets (KubeVirt: a file watch, applied every 15 s)
FORCE_RESYNC = 300.0      # s: everything is applied again (KubeVirt's forceResyncTicker)
SECRET_DIR = "/var/run/kubevirt-private/secret"   # where virt-launcher reads them (its messages name it)
OFFLINE = "Guest agent is offline"


def agent_credentials(vmi):
    """The VMI's accessCredentials the guest agent applies: [(kind, secret name, users)], kind being
    "ssh" or "password" (users: the qemuGuestAgent users of an SSH key, [] for passwords)."""
    out = []
    for cred in dig(vmi, "spec", "accessCredentials", default=[]) or []:
        for field, kind in (("sshPublicKey", "ssh"), ("userPassword", "password")):
            entry = cred.get(field) or {}
            agent = dig(entry, "propagationMethod", "qemuGuestAgent")
            secret = dig(entry, "source", "secret", "secretName")
            if agent is not None and secret:
                out.append((kind, secret, list(agent.get("users") or []) if kind == "ssh" else []))
    return out


def secret_keys(secret):
    """The public keys of a Secret as virt-launcher reads its files: every value (in key order), one key a line."""
    keys = []
    for name in sorted((secret.get("data") or {})):
        text = base64.b64decode(secret["data"][name]).decode("utf-8", "replace")
        keys += [line.strip() for line in text.split("\n") if line.strip()]
    return keys


def secret_passwords(secret):
    """{user: password} of a userPassword Secret (empty values are skipped, as virt-launcher does)."""
    out = {}
    for name in sorted((secret.get("data") or {})):
        password = base64.b64decode(secret["data"][name]).decode("utf-8", "replace").strip()
        if password:
            out[name] = password
    return out


def desired_state(credentials, secrets):
    """(authorized keys by user, passwords by user) from agent_credentials() and {secret name: Secret}."""
    keys, passwords = {}, {}
    for kind, name, users in credentials:
        if kind == "ssh":
            for user in users:
                keys.setdefault(user, [])
                keys[user] += secret_keys(secrets[name])
        else:
            passwords.update(secret_passwords(secrets[name]))
    return keys, passwords


def agent_error(command, exc):
    """libvirt's words for a failed agent command (what virt-launcher's messages quote)."""
    text = str(exc)
    prefix = f"guest agent {command}: "
    if text.startswith(prefix):
        text = text[len(prefix):]
    return f"internal error: unable to execute QEMU agent command '{command}': {text}"


class AccessCredentials:
    """The access credential managers of this simulator's real guests, by VMI uid."""

    def __init__(self, sim):
        self.sim = sim
        self.results = {}     # uid -> (succeeded, message) of the last sync
        self.applied = {}     # uid -> (desired state, monotonic time) of the last successful sync
        self.secrets = {}     # uid -> {secret name: Secret} last read (kubelet keeps a deleted Secret's files)
        self._tasks = {}

    # ------------------------------------------------------------------------- the VMI controller's hook
    def condition(self, vmi):
        """(status, message) of AccessCredentialsSynchronized for a running VMI, or None when it has none
        (no qemuGuestAgent credential, no real guest, nothing synced yet). Starts the VMI's sync."""
        uid = vmi["metadata"]["uid"]
        if not agent_credentials(vmi) or self.sim.guests.guest_for(vmi) is None:
            return None
        if uid not in self._tasks:
            key = f"{vmi['metadata']['namespace']}/{vmi['metadata']['name']}"
            self._tasks[uid] = asyncio.get_running_loop().create_task(self._follow(uid, key), name=f"creds-{uid[:8]}")
        result = self.results.get(uid)
        if result is None:
            return None
        return ("True" if result[0] else "False"), result[1]

    async def _follow(self, uid, key):
        try:
            while True:
                vmi = self.sim.cache.vmis.get(key)
                if vmi is None or vmi["metadata"]["uid"] != uid or self.sim.guests.guest_for(vmi) is None:
                    return
                try:
                    await self.sync(vmi)
                except Exception:  # noqa: BLE001  (one bad round must not end the VMI's sync)
                    log.exception("access credentials of %s", key)
                await asyncio.sleep(SYNC_EVERY)
        finally:
            self._tasks.pop(uid, None)
            self.results.pop(uid, None)
            self.applied.pop(uid, None)
            self.secrets.pop(uid, None)

    # ------------------------------------------------------------------------- one round
    async def sync(self, vmi):
        """Read the Secrets, apply what changed through the agent, report; -> (succeeded, message)."""
        uid = vmi["metadata"]["uid"]
        credentials = agent_credentials(vmi)
        try:
            await self.sim.guests.agent_call(vmi, "guest-ping")
        except Exception:  # noqa: BLE001  (any failure of the channel is an offline agent)
            return self._report(vmi, False, OFFLINE)
        errors = []
        secrets = self.secrets.setdefault(uid, {})
        for name in dict.fromkeys(name for _kind, name, _users in credentials):
            try:
                secrets[name] = await self.sim.kube.get(SECRET, name, vmi["metadata"]["namespace"])
            except ApiError as exc:
                if name not in secrets:    # never mounted: virt-launcher finds no files
                    errors.append(f"error occurred while reading the list of secrets files from the base directory "
                                  f"{SECRET_DIR}/{name}-access-cred: open {SECRET_DIR}/{name}-access-cred: "
                                  f"no such file or directory ({exc.body.get('message', exc)})")
        readable = [c for c in credentials if c[1] in secrets]
        keys, passwords = desired_state(readable, secrets)
        last = self.applied.get(uid)
        if last and last[0] == (keys, passwords) and not errors and time.monotonic() - last[1] < FORCE_RESYNC:
            return self._report(vmi, True, "")
        for user, user_keys in keys.items():
            try:
                await self.sim.guests.agent_call(vmi, "guest-ssh-add-authorized-keys", username=user,
                                                 keys=user_keys, reset=True)
            except Exception as exc:  # noqa: BLE001
                errors.append(f"Error encountered writing ssh pub key access credentials for user [{user}]: "
                              f"{agent_error('guest-ssh-add-authorized-keys', exc)}")
        for user, password in passwords.items():
            try:
                await self.sim.guests.agent_call(vmi, "guest-set-user-password", username=user, crypted=False,
                                                 password=base64.b64encode(password.encode()).decode())
            except Exception as exc:  # noqa: BLE001
                errors.append(f"Error encountered setting password for user [{user}]: "
                              f"{agent_error('guest-set-user-password', exc)}")
        if errors:
            self.applied.pop(uid, None)
            return self._report(vmi, False, errors[-1])   # virt-launcher's last report stands
        self.applied[uid] = ((keys, passwords), time.monotonic())
        return self._report(vmi, True, "")

    def _report(self, vmi, succeeded, message):
        uid = vmi["metadata"]["uid"]
        result = (succeeded, message)
        if self.results.get(uid) != result:
            self.results[uid] = result
            if succeeded:
                self.sim.recorder.normal(vmi, "AccessCredentialsSyncSuccess", "Access credentials sync successful.",
                                         "virt-handler")
            else:
                self.sim.recorder.warning(vmi, "AccessCredentialsSyncFailed",
                                          f"Access credentials sync failed: {message}", "virt-handler")
            self.sim.vmi_ctl.enqueue(f"{vmi['metadata']['namespace']}/{vmi['metadata']['name']}")
        return result


# ----------------------------------------------------------------------------- cloud-init propagation
def boot_credentials(vmi, kind):
    """Secret names of SSH keys propagated by the VMI's cloud-init disk of KIND ("nocloud"/"configdrive")."""
    field = {"nocloud": "noCloud", "configdrive": "configDrive"}[kind]
    return [dig(c, "sshPublicKey", "source", "secret", "secretName")
            for c in dig(vmi, "spec", "accessCredentials", default=[]) or []
            if dig(c, "sshPublicKey", "propagationMethod", field) is not None
            and dig(c, "sshPublicKey", "source", "secret", "secretName")]


def with_public_keys(meta, kind, keys):
    """The cloud-init meta-data text META (realguest.meta_data) with KEYS added."""
    if not keys:
        return meta
    if kind == "configdrive":
        data = json.loads(meta)
        data["public_keys"] = {str(i): key for i, key in enumerate(keys)}
        return json.dumps(data)
    return meta + "public-keys:\n" + "".join(f'  "{i}": {json.dumps(key)}\n' for i, key in enumerate(keys))


async def boot_meta_data(sim, vmi, kind, meta):
    """META with the public keys of the VMI's noCloud / configDrive access credentials; ValueError when
    a Secret is missing (virt-launcher's pod cannot mount it and never starts)."""
    keys = []
    for name in boot_credentials(vmi, kind):
        try:
            secret = await sim.kube.get(SECRET, name, vmi["metadata"]["namespace"])
        except ApiError as exc:
            raise ValueError(f"access credential Secret {vmi['metadata']['namespace']}/{name}: {exc}") from None
        keys += secret_keys(secret)
    return with_public_keys(meta, kind, keys)
