"""VirtualMachineInstance lifecycle: virt-controller (pod, phases up to Scheduled, sync errors)
and virt-handler (Scheduled -> Running, guest details, shutdown). One write per reconcile.

Phases: Pending -> Scheduling (launcher pod exists) -> Scheduled (pod Ready) -> Running
(after the boot delay) -> Succeeded / Failed.
"""
import json
import time

from . import credentials, guest, handler, liveresize, netlive, phases
from .kube import POD, ApiError
from .launcher import EPHEMERAL_ANNOTATION, claim_names, multus_networks, nad_ref, networks_annotation, render
from .realguest import GuestStartError
from .runtime import Controller
from .util import age, deep, dig, get_condition, remove_condition, set_condition, set_latest_api_version, since, ts

VMI_FINALIZER = "kubevirt.io/foregroundDeleteVirtualMachine"
VM_FINALIZER = "kubevirt.io/virtualMachineControllerFinalize"
NODE_LABEL = "kubevirt.io/nodeName"
MIGRATION_JOB_LABEL = "kubevirt.io/migrationJobUID"
FINAL = phases.VMI_FINAL


def is_ephemeral(pod):
    return (pod["metadata"].get("annotations") or {}).get(EPHEMERAL_ANNOTATION) == "true"


def pod_ready(pod):
    if pod is None or pod["metadata"].get("deletionTimestamp"):
        return False
    return dig(pod, "status", "phase") == "Running" and any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in dig(pod, "status", "conditions", default=[]))


def pod_down(pod):
    return pod is None or pod["metadata"].get("deletionTimestamp") is not None or \
        dig(pod, "status", "phase") in FINAL


def pod_state(pod):
    """The launcher pod as phases.vmi_phase sees it."""
    if pod is None:
        return None
    return "down" if pod_down(pod) else "ready" if pod_ready(pod) else "starting"


class VMIController(Controller):
    name = "vmi"
    workers = 8

    def __init__(self, sim):
        super().__init__(sim)
        self.first_seen = {}     # uid -> monotonic time (falls back to creationTimestamp after a restart)
        self.pod_expected = {}   # uid -> monotonic time of a pod create not yet seen in the cache
        self.shutdown_at = {}    # uid -> monotonic time the graceful shutdown was signalled

    # ---------------------------------------------------------------------------- helpers
    def _since(self, vmi):
        return since(self.first_seen, vmi["metadata"]["uid"], vmi["metadata"].get("creationTimestamp"))

    def current_pod(self, vmi, pods):
        node = dig(vmi, "status", "nodeName")
        launchers = [p for p in pods if not is_ephemeral(p)]
        if node:
            for p in launchers:
                if dig(p, "spec", "nodeName") == node:
                    return p
        for p in launchers:
            if MIGRATION_JOB_LABEL not in (p["metadata"].get("labels") or {}):
                return p
        return None

    async def _write(self, old, new):
        if new == old:
            return old
        return await self.sim.cache.vmis.replace(new)

    # ---------------------------------------------------------------------------- reconcile
    async def sync(self, key):
        vmi = self.sim.cache.vmis.get(key)
        if vmi is None:
            return
        pods = self.sim.vmi_pods(vmi)
        uid = vmi["metadata"]["uid"]
        if self.pod_expected.get(uid) and pods:
            self.pod_expected.pop(uid, None)
        if vmi["metadata"].get("deletionTimestamp"):
            await self.sync_deleting(vmi, pods)
            return
        phase = dig(vmi, "status", "phase") or ""
        if phase in FINAL:
            await self.sync_final(vmi, pods)
            return
        new = deep(vmi)
        st = new.setdefault("status", {})
        conds = st.setdefault("conditions", [])
        fins = new["metadata"].setdefault("finalizers", [])
        if VMI_FINALIZER not in fins:
            fins.append(VMI_FINALIZER)
        set_latest_api_version(new["metadata"])
        pod = self.current_pod(vmi, pods)
        sync_err = None
        requeue = None

        if phase in ("", "Pending") and pod is None:
            if self.pod_expected.get(uid) and time.monotonic() - self.pod_expected[uid] < 5:
                self.enqueue(key, after=1.0)
                return   # our pod create has not reached the cache yet
            st["phase"] = "Pending"
            sync_err, pod = await self._pending(vmi, new, pods)
            if st["phase"] == "Failed":   # a DataVolume of it failed
                pod = None
        if st.get("phase") != "Failed":
            st["phase"] = phases.vmi_phase(phase, pod_state(pod))
        ended = self.sim.guests.exit_phase(vmi)
        if phase == "Running" and ended:
            st["phase"] = ended   # the real guest's QEMU exited: crashed, or the guest powered off

        if phase in ("", "Pending", "Scheduling") and st["phase"] in ("Scheduling", "Scheduled") \
                and not pod_down(pod):
            remove_condition(conds, "Provisioning")
            sched = next((c for c in dig(pod, "status", "conditions", default=[]) if c["type"] == "PodScheduled"), None)
            if sched and sched.get("status") == "False":
                set_condition(conds, "PodScheduled", "False", sched.get("reason", ""), sched.get("message", ""))
            else:
                remove_condition(conds, "PodScheduled")
            sync_err = image_error(pod) or sync_err
            if st["phase"] == "Scheduled":
                st["nodeName"] = pod["spec"]["nodeName"]
                new["metadata"].setdefault("labels", {})[NODE_LABEL] = pod["spec"]["nodeName"]
                st["qosClass"] = dig(pod, "status", "qosClass") or "Burstable"
                st["launcherContainerImageVersion"] = pod["spec"]["containers"][0]["image"]

        if st["phase"] == "Scheduled":
            requeue, boot_err = await self._maybe_boot(vmi, new, pod)
            sync_err = boot_err or sync_err
        if st["phase"] == "Running" and phase == "Running":
            waits = [await self.sim.hotplug.sync_pods(vmi, pod), await self._sync_pod_networks(vmi, pod),
                     self._refresh_running(vmi, new, pod)]
            waits = [w for w in waits if w is not None]
            requeue = min(waits) if waits else None

        self._ready_condition(new, pod)
        self._check_failure(conds, sync_err)
        self._phase_timestamps(vmi, new)
        st["activePods"] = {p["metadata"]["uid"]: dig(p, "spec", "nodeName") or "" for p in pods
                            if not is_ephemeral(p) and dig(p, "spec", "nodeName")}
        if not st["activePods"]:
            st.pop("activePods")
        updated = await self._write(vmi, new)
        if updated is not None and st["phase"] == "Running" and phase != "Running":
            self.sim.recorder.normal(updated, "Created", "VirtualMachineInstance defined.", "virt-handler")
            self.sim.recorder.normal(updated, "Started", "VirtualMachineInstance started.", "virt-handler")
        if updated is not None and st["phase"] == "Running" and liveresize.needs_workload_update(updated):
            await self.sim.migration_ctl.workload_update(updated)
        if st["phase"] == "Failed" and phase != "Failed" and updated is not None:
            self.sim.recorder.warning(updated, "Stopped", "The VirtualMachineInstance crashed.", "virt-handler")
        if st["phase"] == "Succeeded" and phase != "Succeeded" and updated is not None:
            self.sim.recorder.normal(updated, "Stopped", "The VirtualMachineInstance was shut down.", "virt-handler")
        if requeue is not None:
            self.enqueue(key, after=requeue)

    # ---------------------------------------------------------------------------- Pending
    async def _pending(self, vmi, new, pods):
        """Volumes and networks ready? Then create the launcher pod. Returns (sync_err, pod)."""
        sim = self.sim
        ns = vmi["metadata"]["namespace"]
        st = new["status"]
        conds = st["conditions"]
        waiting = wffc = False
        for volname, claim in claim_names(vmi["spec"]).items():
            vol = next(v for v in vmi["spec"]["volumes"] if v["name"] == volname)
            pvc = sim.cache.pvcs.get_ns(ns, claim)
            if vol.get("dataVolume"):
                dv = sim.cache.dvs.get_ns(ns, claim)
                if dv is None and pvc is None:
                    return self._pvc_not_found(vmi, new, claim), None
                if dv is not None:
                    dv_phase = dig(dv, "status", "phase")
                    if dv_phase == "Failed":
                        st["phase"] = "Failed"
                        return None, None
                    if dv_phase in ("WaitForFirstConsumer", "PendingPopulation"):
                        wffc = True
                    elif dv_phase != "Succeeded":
                        waiting = True
            elif pvc is None:
                return self._pvc_not_found(vmi, new, claim), None
        remove_condition(conds, "PodScheduled")
        dvs = handler.datavolumes_of(sim, vmi)
        if dvs:
            if waiting or wffc:
                set_condition(conds, "DataVolumesReady", "False", "NotAllDVsReady", "Not all of the VMI's DVs are ready")
            else:
                set_condition(conds, "DataVolumesReady", "True", "AllDVsReady", "All of the VMI's DVs are bound and not running")
        if waiting:
            return None, None
        nads = {}
        for net in multus_networks(vmi):
            nns, name = nad_ref(ns, net["multus"]["networkName"])
            nad = sim.cache.nads.get_ns(nns, name)
            if nad is None:
                msg = f"failed to render launch manifest: failed to locate network attachment definition {nns}/{name}"
                if not get_condition(vmi, "Synchronized") or get_condition(vmi, "Synchronized").get("message") != msg:
                    sim.recorder.warning(vmi, "FailedCreate", msg)
                return ("FailedCreate", msg), None
            nads[net["name"]] = nad
        temp = [p for p in pods if is_ephemeral(p)]
        if wffc:
            set_condition(conds, "Provisioning", "True")
            if not temp and not self.pod_expected.get(vmi["metadata"]["uid"]):
                await self._create_pod(vmi, nads, ephemeral=True)
            return None, None
        remove_condition(conds, "Provisioning")
        for p in temp:
            await sim.kube.delete(POD, p["metadata"]["name"], ns)
        pod = await self._create_pod(vmi, nads)
        return None, pod

    def _pvc_not_found(self, vmi, new, claim):
        ns = vmi["metadata"]["namespace"]
        msg = f"PVC {ns}/{claim} does not exist, waiting for it to appear"
        old = get_condition(vmi, "Synchronized")
        if not old or old.get("message") != msg:
            self.sim.recorder.normal(vmi, "FailedPvcNotFound", msg)
        set_condition(new["status"]["conditions"], "PodScheduled", "False", "Unschedulable", msg)
        return ("FailedPvcNotFound", msg)

    async def _create_pod(self, vmi, nads, ephemeral=False):
        sim = self.sim
        uid = vmi["metadata"]["uid"]
        pod = render(vmi, nads, ephemeral=ephemeral)
        reservation = f"res-{uid}-{time.monotonic_ns()}"
        pod["metadata"]["annotations"]["lab.virtops.io/reservation"] = reservation
        node, msg = sim.scheduler.place(pod, reservation)
        if node:
            pod["spec"]["nodeName"] = node
            await sim.scheduler.select_volumes_node(pod, node)
        self.pod_expected[uid] = time.monotonic()
        try:
            created = await sim.kube.create(POD, pod, vmi["metadata"]["namespace"])
        except ApiError as exc:
            self.pod_expected.pop(uid, None)
            sim.scheduler.reserved.pop(reservation, None)
            sim.recorder.warning(vmi, "FailedCreate", f"Error creating pod: {exc.body.get('message', exc)}")
            raise
        sim.cache.pods.observe(created)
        if node:
            sim.recorder.normal(created, "Scheduled", f"Successfully assigned {created['metadata']['namespace']}/"
                                f"{created['metadata']['name']} to {node}", component="default-scheduler")
        else:
            await sim.scheduler.mark_unschedulable(created, msg)
            sim.scheduler.enqueue(f"{created['metadata']['namespace']}/{created['metadata']['name']}", after=5)
        if not ephemeral:
            sim.recorder.normal(vmi, "SuccessfulCreate", f"Created virtual machine pod {created['metadata']['name']}")
        return created

    # ---------------------------------------------------------------------------- boot
    async def _maybe_boot(self, vmi, new, pod):
        """Scheduled -> Running: after the boot delay for a simulated guest, once QEMU runs for a
        real one. Returns (requeue delay, sync error)."""
        st = new["status"]
        if self.sim.guests.wanted(vmi):
            try:
                await self.sim.guests.launch(vmi)
            except GuestStartError as exc:
                msg = f"failed to start the real guest: {exc}"
                self.sim.recorder.warning(vmi, "SyncFailed", msg, "virt-handler")
                st["phase"] = "Failed"
                return None, ("SyncFailed", msg)
        else:
            left = self.sim.boot_delay - self._since(vmi)
            if left > 0.02:
                return left, None
        st["phase"] = "Running"
        requeue = self._refresh_running(vmi, new, pod)
        if dig(vmi, "spec", "startStrategy") == "Paused":
            set_condition(st["conditions"], "Paused", "True", "PausedByUser", "VMI was paused by user", probe=True)
            if self.sim.guests.guest_for(vmi):
                await self.sim.guests.qmp(vmi, "stop")
        return requeue, None

    async def _sync_pod_networks(self, vmi, pod):
        """virt-controller keeps the launcher pod's Multus networks annotation in line with the VMI's
        interfaces (hot-plug / hot-unplug). Without the Multus dynamic networks controller the pod's
        network-status does not change: a migration brings the new pod."""
        if pod is None or is_ephemeral(pod) or pod["metadata"].get("deletionTimestamp"):
            return None
        ms = dig(vmi, "status", "migrationState")
        if ms and ms.get("startTimestamp") and not ms.get("completed"):
            return None
        key = "k8s.v1.cni.cncf.io/networks"
        desired = networks_annotation(vmi, dig(vmi, "status", "interfaces", default=[]) or [])
        current = json.loads((pod["metadata"].get("annotations") or {}).get(key) or "[]")
        if current == desired:
            return None
        updated = await self.sim.kube.patch(POD, pod["metadata"]["name"], {"metadata": {"annotations": {
            key: json.dumps(desired) if desired else None}}}, pod["metadata"]["namespace"])
        self.sim.cache.pods.observe(updated)
        return None

    def _refresh_running(self, vmi, new, pod):
        """Running details; returns a requeue delay (hot-plug steps, MigrationRequired) or None."""
        st = new["status"]
        dvs = handler.datavolumes_of(self.sim, vmi)
        if self.sim.guests.guest_for(vmi) or self.sim.guests.exit_phase(vmi):
            agent = self.sim.guests.agent_info(vmi)     # the real agent's answers, None until it answers
        else:
            agent = guest.has_agent(vmi, dvs)
        hp_entries, requeue = self.sim.hotplug.volume_statuses(vmi, pod, handler.targets(vmi),
                                                               handler.pvc_infos(self.sim, vmi))
        handler.running_details(self.sim, new, pod, st, agent, dvs, hp_entries)
        conds = st["conditions"]
        status, reason, message = handler.live_migratable(self.sim, vmi)
        set_condition(conds, "LiveMigratable", status, reason, message, probe=True)
        if status == "True":
            set_condition(conds, "StorageLiveMigratable", "True", probe=True)
        else:
            remove_condition(conds, "StorageLiveMigratable")
        if agent:
            set_condition(conds, "AgentConnected", "True", probe=True)
        else:
            remove_condition(conds, "AgentConnected")
        synced = self.sim.credentials.condition(vmi)   # a real guest's accessCredentials (credentials.py)
        if synced:
            set_condition(conds, credentials.CONDITION, synced[0], "", synced[1])
        else:
            remove_condition(conds, credentials.CONDITION)
        for ctype in liveresize.hotplug_conditions(new):
            if not any(c.get("type") == ctype for c in conds):
                conds.append({"type": ctype, "status": "True", "lastProbeTime": None, "lastTransitionTime": None})
        waits = [w for w in (requeue, self._migration_required(new)) if w is not None]
        return min(waits) if waits else None

    @staticmethod
    def _migration_required(new):
        """The VMI's MigrationRequired condition for NIC hot-plug/unplug (pkg/network/migration)."""
        conds = new["status"]["conditions"]
        need = netlive.migration_requirement(new)
        if need is None:
            remove_condition(conds, netlive.MIGRATION_REQUIRED)
            return None
        cur = next((c for c in conds if c["type"] == netlive.MIGRATION_REQUIRED), None)
        if need == "immediate":
            set_condition(conds, netlive.MIGRATION_REQUIRED, "True", netlive.REASON_LIVE_UPDATE, probe=True)
            return None
        if cur is not None and cur.get("status") == "True":
            return None
        if cur is not None and cur.get("status") == "False":
            left = netlive.DYNAMIC_NETWORK_CONTROLLER_GRACE - age(cur.get("lastTransitionTime"))
            if left <= 0:
                set_condition(conds, netlive.MIGRATION_REQUIRED, "True", netlive.REASON_LIVE_UPDATE, probe=True)
                return None
            return left + 0.05
        set_condition(conds, netlive.MIGRATION_REQUIRED, "False", netlive.REASON_PENDING, probe=True)
        return netlive.DYNAMIC_NETWORK_CONTROLLER_GRACE + 0.05

    def _ready_condition(self, new, pod):
        st = new["status"]
        conds = st["conditions"]
        phase = st.get("phase")
        if pod is None or is_ephemeral(pod):
            set_condition(conds, "Ready", "False", "PodNotExists", "virt-launcher pod has not yet been scheduled", probe=True)
        elif pod_down(pod):
            set_condition(conds, "Ready", "False", "PodTerminating", "virt-launcher pod is terminating", probe=True)
        elif phase != "Running":
            set_condition(conds, "Ready", "False", "GuestNotRunning", "Guest VM is not reported as running", probe=True)
        elif pod_ready(pod):
            set_condition(conds, "Ready", "True", probe=True)
        else:
            set_condition(conds, "Ready", "False", "PodConditionMissing",
                          "virt-launcher pod is missing the Ready condition", probe=True)

    @staticmethod
    def _check_failure(conds, sync_err):
        if sync_err:
            reason, message = sync_err
            cur = next((c for c in conds if c["type"] == "Synchronized"), None)
            if not cur or cur.get("reason") != reason or cur.get("message") != message:
                set_condition(conds, "Synchronized", "False", reason, message)
        else:
            remove_condition(conds, "Synchronized")

    @staticmethod
    def _phase_timestamps(old, new):
        st = new["status"]
        st["phaseTransitionTimestamps"] = phases.vmi_phase_stamps(
            dig(old, "status", "phase") or "", st.get("phase"), st.get("phaseTransitionTimestamps"),
            old["metadata"].get("creationTimestamp"), ts())

    # ---------------------------------------------------------------------------- stop
    async def sync_deleting(self, vmi, pods):
        sim = self.sim
        uid = vmi["metadata"]["uid"]
        new = deep(vmi)
        st = new.setdefault("status", {})
        st.setdefault("conditions", [])
        phase = st.get("phase") or ""
        pod = self.current_pod(vmi, pods)
        if phase not in FINAL:
            if phase == "Running" and pod is not None and not pod_down(pod):
                if uid not in self.shutdown_at:
                    self.shutdown_at[uid] = time.monotonic()
                    sim.recorder.normal(vmi, "ShuttingDown", "Signaled Graceful Shutdown", "virt-handler")
                    sim.recorder.normal(vmi, "Deleted", "Signaled Deletion", "virt-handler")
                grace = dig(vmi, "spec", "terminationGracePeriodSeconds")
                if self.sim.guests.guest_for(vmi):
                    # a real guest: ACPI power-down, the kill when the grace period is over
                    left = 0.25 if self.sim.guests.shutdown(vmi, 30 if grace is None else grace) else 0
                else:
                    shutdown = min(0.5, float(grace)) if grace is not None else 0.5
                    left = shutdown - (time.monotonic() - self.shutdown_at[uid])
                if left > 0:
                    self.enqueue(f"{vmi['metadata']['namespace']}/{vmi['metadata']['name']}", after=left)
                    return
                st["phase"] = "Succeeded"
                sim.recorder.normal(vmi, "Stopped", "The VirtualMachineInstance was shut down.", "virt-handler")
            else:
                st["phase"] = "Failed"
            self._phase_timestamps(vmi, new)
        await sim.hotplug.delete_all(pods)
        for p in pods:
            if not p["metadata"].get("deletionTimestamp"):
                await sim.kube.delete(POD, p["metadata"]["name"], p["metadata"]["namespace"])
        remaining = self.sim.vmi_pods(vmi, include_done=True)
        set_condition(st["conditions"], "Ready", "False", "PodTerminating" if remaining else "PodNotExists",
                      "virt-launcher pod is terminating" if remaining else "virt-launcher pod has not yet been scheduled",
                      probe=True)
        if not remaining:
            self._drop_finalizers(vmi, new)
            self.sim.guests.release(vmi)
            self.shutdown_at.pop(uid, None)
            self.first_seen.pop(uid, None)
        await self._write(vmi, new)

    async def sync_final(self, vmi, pods):
        new = deep(vmi)
        await self.sim.hotplug.delete_all(pods)
        for p in pods:
            if not p["metadata"].get("deletionTimestamp"):
                await self.sim.kube.delete(POD, p["metadata"]["name"], p["metadata"]["namespace"])
        self.sim.guests.release(vmi)   # a real guest's pod failed or was deleted: the QEMU in it goes too
        if not self.sim.vmi_pods(vmi, include_done=True):
            self._drop_finalizers(vmi, new, keep_vm=True)
            st = new.setdefault("status", {})
            set_condition(st.setdefault("conditions", []), "Ready", "False", "PodNotExists",
                          "virt-launcher pod has not yet been scheduled", probe=True)
            st.pop("activePods", None)
        await self._write(vmi, new)

    def _drop_finalizers(self, vmi, new, keep_vm=False):
        fins = new["metadata"].get("finalizers") or []
        drop = {VMI_FINALIZER}
        owner = next((r for r in vmi["metadata"].get("ownerReferences") or [] if r.get("kind") == "VirtualMachine"), None)
        vm = self.sim.cache.vms.get(f"{vmi['metadata']['namespace']}/{owner['name']}") if owner else None
        if not keep_vm or vm is None or vm["metadata"]["uid"] != owner.get("uid"):
            if vm is None or vm["metadata"]["uid"] != (owner or {}).get("uid"):
                drop.add(VM_FINALIZER)
        new["metadata"]["finalizers"] = [f for f in fins if f not in drop]


def image_error(pod):
    statuses = list(dig(pod, "status", "initContainerStatuses", default=[])) + \
        list(dig(pod, "status", "containerStatuses", default=[]))
    for cs in statuses:
        waiting = dig(cs, "state", "waiting")
        if waiting and waiting.get("reason") in ("ErrImagePull", "ImagePullBackOff"):
            return waiting["reason"], waiting.get("message", "")
    return None
