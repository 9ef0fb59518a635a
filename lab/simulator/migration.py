"""Live migration (virt-controller's migration controller + both virt-handlers).

Pending -> Scheduling (target pod) -> Scheduled -> PreparingTarget -> TargetReady -> Running
-> Succeeded: the VMI moves to the target node. A VMI whose LiveMigratable condition is False
fails the migration (and the create webhook rejects new ones, as KubeVirt's does).

Cancelling (``virtctl migrate-cancel``) deletes the migration: the finalizer
kubevirt.io/migrationJobFinalize holds it until the controller has aborted and failed it (AbortRequested
condition, target pod deleted, the VMI's migrationState aborted, phase Failed), as KubeVirt's migration
controller does; an ended migration loses the finalizer.

When the target pod is handed over (Scheduled), the MigrationPolicy that matches the VMI is chosen as
pkg/virt-controller/watch/migration/migrationpolicy.go matchPolicy does and recorded in the VMI's (and the
migration's) migrationState: migrationPolicyName and migrationConfiguration (the cluster's defaults with the
policy's fields over them), as handleTargetPodHandoff does.
"""
import time

from . import liveresize, phases
from .kube import NAMESPACE, POD, VMI, VMIM, ApiError, key_of
from .launcher import render
from .runtime import Controller
from .util import deep, dig, get_condition, set_latest_api_version, since, ts
from .vmi import MIGRATION_JOB_LABEL, NODE_LABEL

FINALIZER = "kubevirt.io/migrationJobFinalize"
# virt-config's MigrationConfiguration defaults (a KubeVirt CR without spec.configuration.migrations), as
# GetMigrationConfiguration returns them: allowWorkloadDisruption follows allowPostCopy when unset
CLUSTER_MIGRATION_CONFIGURATION = {
    "allowAutoConverge": False, "allowPostCopy": False, "allowWorkloadDisruption": False,
    "bandwidthPerMigration": "0Mi", "completionTimeoutPerGiB": 150, "nodeDrainTaintKey": "kubevirt.io/drain",
    "parallelMigrationsPerCluster": 5, "parallelOutboundMigrationsPerNode": 2, "progressTimeout": 150,
    "unsafeMigrationOverride": False, "utilityVolumesTimeout": 150}
POLICY_FIELDS = ("allowAutoConverge", "bandwidthPerMigration", "completionTimeoutPerGiB", "allowPostCopy",
                 "allowWorkloadDisruption")


def _matching_labels(wanted, labels):
    """countLabelsHelper: how many of `wanted` the labels have, None as soon as one is missing."""
    count = 0
    for key, value in (wanted or {}).items():
        if key not in labels or labels[key] != value:
            return None
        count += 1
    return count


def match_policy(policies, vmi_labels, namespace_labels):
    """matchPolicy: the policy whose selectors all match and that matches the most labels (VMI labels
    win a tie of totals), then the first name in lexicographic order; None when none matches. A policy
    without selectors matches nothing; empty selectors match everything (with score 0). As KubeVirt's
    countMatchingLabels, neither selector is looked at when the VMI has no labels at all."""
    best, best_score = [], (0, 0)
    for policy in policies:
        sel = dig(policy, "spec", "selectors")
        if sel is None:
            continue
        vmi_count = ns_count = 0
        if vmi_labels is not None:
            if sel.get("virtualMachineInstanceSelector") is not None:
                vmi_count = _matching_labels(sel["virtualMachineInstanceSelector"], vmi_labels)
            if vmi_count is not None and sel.get("namespaceSelector") is not None:
                ns_count = _matching_labels(sel["namespaceSelector"], namespace_labels or {})
        if vmi_count is None or ns_count is None:
            continue
        score = (vmi_count + ns_count, vmi_count)
        if score > best_score:
            best, best_score = [policy], score
        elif score == best_score:
            best.append(policy)
    return min(best, key=lambda p: p["metadata"]["name"]) if best else None


def migration_configuration(policy):
    """(policy name or None, migrationConfiguration): GetMigrationConfByPolicy over the cluster's defaults;
    the name only when the policy set one of its fields (isUpdated)."""
    conf = deep(CLUSTER_MIGRATION_CONFIGURATION)
    spec = (policy or {}).get("spec") or {}
    changed = [f for f in POLICY_FIELDS if spec.get(f) is not None]
    for field in changed:
        conf[field] = spec[field]
    if spec.get("allowWorkloadDisruption") is None and spec.get("allowPostCopy") is not None:
        conf["allowWorkloadDisruption"] = spec["allowPostCopy"]   # backward compatibility, as KubeVirt
    return (policy["metadata"]["name"] if changed else None), conf


class MigrationController(Controller):
    name = "migration"
    workers = 2

    def __init__(self, sim):
        super().__init__(sim)
        self.configurations = {}    # migration uid -> (policy name, migrationConfiguration) chosen at hand-off
        self.workload_updates = {}  # namespace -> VMI names whose workload-update migration is being created

    def enqueue_for_vmi(self, vmi):
        ns, name = vmi["metadata"]["namespace"], vmi["metadata"]["name"]
        for mig in self.sim.cache.vmims.items(ns):
            if dig(mig, "spec", "vmiName") == name and dig(mig, "status", "phase") not in phases.MIGRATION_FINAL:
                self.enqueue(key_of(mig))

    def _since(self, mig, what):
        stamp = mig["metadata"].get("creationTimestamp") if what == "created" else None
        return since(self.marks, (mig["metadata"]["uid"], what), stamp)

    def step(self):
        return max(0.2, 0.2 * self.sim.boot_delay)

    async def sync(self, key):
        mig = self.sim.cache.vmims.get(key)
        if mig is None:
            return
        phase = dig(mig, "status", "phase") or ""
        ns = mig["metadata"]["namespace"]
        vmi = self.sim.cache.vmis.get_ns(ns, dig(mig, "spec", "vmiName"))
        if mig["metadata"].get("deletionTimestamp"):
            await self._abort(mig, vmi)
            return
        if phase in phases.MIGRATION_FINAL:
            self.configurations.pop(mig["metadata"]["uid"], None)
            await self._drop_finalizer(mig)
            return
        new = deep(mig)
        st = new.setdefault("status", {})
        labels = new["metadata"].setdefault("labels", {})
        labels["kubevirt.io/vmi-name"] = dig(mig, "spec", "vmiName")
        set_latest_api_version(new["metadata"])
        if FINALIZER not in (new["metadata"].get("finalizers") or []):
            new["metadata"]["finalizers"] = (new["metadata"].get("finalizers") or []) + [FINALIZER]
        if vmi is None or dig(vmi, "status", "phase") != "Running" or vmi["metadata"].get("deletionTimestamp"):
            if vmi is not None and dig(vmi, "status", "phase") in ("", "Pending", "Scheduling", "Scheduled"):
                st["phase"] = st.get("phase") or "Pending"
                await self._write(mig, new)
                return
            await self._fail(mig, new, vmi, "Migration failed because the VMI is not running")
            return
        cond = get_condition(vmi, "LiveMigratable")
        if cond is not None and cond.get("status") == "False":
            await self._fail(mig, new, vmi, f"Cannot migrate VMI, Reason: {cond.get('reason')}, "
                                            f"Message: {cond.get('message')}")
            return
        source = dig(vmi, "status", "nodeName")
        pods = self.sim.vmi_pods(vmi)
        target = next((p for p in pods if (p["metadata"].get("labels") or {}).get(MIGRATION_JOB_LABEL)
                       == mig["metadata"]["uid"]), None)
        source_pod = next((p for p in pods if dig(p, "spec", "nodeName") == source and p is not target), None)
        if not phase:
            st["phase"] = "Pending"
            self._stamp(st, "Pending")
            await self._write(mig, new)
            return
        if phase == "Pending":
            if target is None:
                target = await self._create_target(mig, vmi, source)
            st["phase"] = "Scheduling"
            self._stamp(st, "Scheduling")
            await self._write(mig, new)
            return
        if target is None or target["metadata"].get("deletionTimestamp"):
            await self._fail(mig, new, vmi, "target pod is gone")
            return
        if phase == "Scheduling":
            if dig(target, "status", "phase") != "Running":
                return   # pod events requeue us
            await self._choose_configuration(mig, vmi)
            self._advance(st, "Scheduled", vmi, target, source_pod, mig)
            await self._write(mig, new)
            await self._vmi_state(vmi, mig, target, source_pod, started=False)
            self.enqueue(key, after=self.step())
            return
        left = self.step() - self._since(mig, f"at-{phase}")
        if left > 0:
            self.enqueue(key, after=left)
            return
        nxt = phases.migration_next(phase)
        if nxt == "Succeeded":
            await self._complete(vmi, mig, target, source_pod)
        elif nxt == "Running":
            await self._vmi_state(vmi, mig, target, source_pod, started=True)
        if nxt in phases.MIGRATION_VMI_EVENTS:
            self.sim.recorder.normal(vmi, *phases.MIGRATION_VMI_EVENTS[nxt], "virt-handler")
        self._advance(st, nxt, vmi, target, source_pod, mig)
        await self._write(mig, new)
        if nxt != "Succeeded":
            self.enqueue(key, after=phases.migration_dwell(nxt, self.step()))
        else:
            self.sim.recorder.normal(mig, "SuccessfulMigration", "Source node reported migration succeeded")

    async def workload_update(self, vmi):
        """The workload updater for a VMI with a CPU or memory hot-plug in progress: one migration
        `kubevirt-workload-update-xxxxx`, unless the VMI migrates already, has an unfinished migration or is not
        live-migratable (KubeVirt would evict it only with the Evict workload update method)."""
        ns, name = vmi["metadata"]["namespace"], vmi["metadata"]["name"]
        if _migrating(vmi) or (get_condition(vmi, "LiveMigratable") or {}).get("status") != "True":
            return
        if any(dig(m, "spec", "vmiName") == name and dig(m, "status", "phase") not in phases.MIGRATION_FINAL
               for m in self.sim.cache.vmims.items(ns)):
            return
        if name in self.workload_updates.get(ns, set()):
            return      # our create has not reached the cache yet
        self.workload_updates.setdefault(ns, set()).add(name)
        body = {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstanceMigration",
                "metadata": {"generateName": liveresize.WORKLOAD_UPDATE_PREFIX, "namespace": ns,
                             "annotations": {liveresize.WORKLOAD_UPDATE_ANNOTATION: ""}},
                "spec": {"vmiName": name}}
        try:
            created = await self.sim.kube.create(VMIM, body, ns)
        except ApiError as exc:
            self.workload_updates[ns].discard(name)
            self.sim.recorder.warning(vmi, "FailedCreateVirtualMachineInstanceMigration",
                                      "Error creating a Migration for automated workload update: "
                                      f"{exc.body.get('message', exc)}")
            return
        self.sim.cache.vmims.observe(created)
        self.workload_updates[ns].discard(name)
        self.sim.recorder.normal(vmi, "SuccessfulCreateVirtualMachineInstanceMigration",
                                 f"Created Migration {created['metadata']['name']} for automated workload update")

    async def _choose_configuration(self, mig, vmi):
        """matchMigrationPolicy at the target pod hand-off: the namespace's labels are read from the API."""
        ns = await self.sim.kube.get_or_none(NAMESPACE, vmi["metadata"]["namespace"])
        policy = match_policy(self.sim.cache.migrationpolicies.items(), vmi["metadata"].get("labels"),
                              ((ns or {}).get("metadata") or {}).get("labels") or {})
        self.configurations[mig["metadata"]["uid"]] = migration_configuration(policy)

    def _configuration(self, vmi, mig):
        """What the hand-off chose; after a restart, what the VMI recorded."""
        uid = mig["metadata"]["uid"]
        if uid in self.configurations:
            return self.configurations[uid]
        prev = dig(vmi, "status", "migrationState") or {}
        if prev.get("migrationUid") == uid and prev.get("migrationConfiguration"):
            return prev.get("migrationPolicyName"), prev["migrationConfiguration"]
        return migration_configuration(None)

    def _stamp(self, st, phase):
        stamps = st.setdefault("phaseTransitionTimestamps", [])
        if not any(s["phase"] == phase for s in stamps):
            stamps.append({"phase": phase, "phaseTransitionTimestamp": ts()})

    def _advance(self, st, phase, vmi, target, source_pod, mig):
        st["phase"] = phase
        self._stamp(st, phase)
        self.marks[(mig["metadata"]["uid"], f"at-{phase}")] = time.monotonic()
        st["migrationState"] = self._state(vmi, mig, target, source_pod, started=phase in ("Running", "Succeeded"),
                                           completed=phase == "Succeeded")

    def _state(self, vmi, mig, target, source_pod, started, completed=False, failed=False):
        prev = dig(vmi, "status", "migrationState") or {}
        state = {"migrationUid": mig["metadata"]["uid"], "sourceNode": dig(vmi, "status", "nodeName"),
                 "targetNode": dig(target, "spec", "nodeName") if target else None,
                 "targetPod": target["metadata"]["name"] if target else None,
                 "sourcePod": source_pod["metadata"]["name"] if source_pod else None,
                 "targetNodeAddress": dig(target, "status", "hostIP") if target else None,
                 "mode": "PreCopy", "completed": completed, "failed": failed}
        policy_name, state["migrationConfiguration"] = self._configuration(vmi, mig)
        state["migrationPolicyName"] = policy_name
        if started:
            state["startTimestamp"] = prev.get("startTimestamp") if prev.get("migrationUid") == \
                mig["metadata"]["uid"] and prev.get("startTimestamp") else ts()
        if completed or failed:
            state["endTimestamp"] = ts()
        if prev.get("migrationUid") == mig["metadata"]["uid"] and prev.get("sourceNode"):
            state["sourceNode"] = prev["sourceNode"]
        return {k: v for k, v in state.items() if v is not None}

    async def _vmi_state(self, vmi, mig, target, source_pod, started):
        state = self._state(vmi, mig, target, source_pod, started)

        def mutate(new):
            new["status"]["migrationState"] = state
        await self._mutate_vmi(vmi, mutate)

    async def _complete(self, vmi, mig, target, source_pod):
        node = target["spec"]["nodeName"]
        state = self._state(vmi, mig, target, source_pod, started=True, completed=True)

        def mutate(new):
            new["status"]["migrationState"] = state
            new["status"]["nodeName"] = node
            liveresize.apply_at_target(new["status"], new["spec"])
            new["metadata"].setdefault("labels", {})[NODE_LABEL] = node
            # the migration controller clears MigrationRequired once the VMI runs in its new pod
            conds = new["status"].get("conditions") or []
            new["status"]["conditions"] = [c for c in conds if c.get("type") != "MigrationRequired"]
        await self._mutate_vmi(vmi, mutate)
        if source_pod is not None:
            await self.sim.kube.delete(POD, source_pod["metadata"]["name"], source_pod["metadata"]["namespace"])
        self.sim.recorder.normal(vmi, "Migrated", f"The VirtualMachineInstance migrated to node {node}.", "virt-handler")
        self.sim.vmi_ctl.enqueue(key_of(vmi))

    async def _create_target(self, mig, vmi, source):
        nads = {}
        pod = render(vmi, nads)
        pod["metadata"]["labels"][MIGRATION_JOB_LABEL] = mig["metadata"]["uid"]
        pod["metadata"]["generateName"] = f"virt-launcher-{vmi['metadata']['name']}-"
        terms = [{"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "NotIn", "values": [source]}]}]
        for k, v in (dig(mig, "spec", "addedNodeSelector", default={}) or {}).items():
            terms[0]["matchExpressions"].append({"key": k, "operator": "In", "values": [v]})
        pod["spec"]["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
                                                    {"nodeSelectorTerms": terms}}}
        reservation = f"mig-{mig['metadata']['uid']}"
        pod["metadata"]["annotations"]["lab.virtops.io/reservation"] = reservation
        node, msg = self.sim.scheduler.place(pod, reservation)
        if node:
            pod["spec"]["nodeName"] = node
        created = await self.sim.kube.create(POD, pod, vmi["metadata"]["namespace"])
        self.sim.cache.pods.observe(created)
        if not node:
            await self.sim.scheduler.mark_unschedulable(created, msg)
            self.sim.scheduler.enqueue(key_of(created), after=5)
        self.sim.recorder.normal(mig, "SuccessfulCreate", f"Created migration target pod {created['metadata']['name']}")
        return created

    async def _fail(self, mig, new, vmi, message):
        st = new.setdefault("status", {})
        st["phase"] = "Failed"
        self._stamp(st, "Failed")
        if vmi is not None and dig(vmi, "status", "migrationState", "migrationUid") == mig["metadata"]["uid"]:
            def mutate(vnew):
                vnew["status"]["migrationState"].update({"failed": True, "completed": True, "endTimestamp": ts()})
            await self._mutate_vmi(vmi, mutate)
        for p in (self.sim.vmi_pods(vmi) if vmi else []):
            if (p["metadata"].get("labels") or {}).get(MIGRATION_JOB_LABEL) == mig["metadata"]["uid"]:
                await self.sim.kube.delete(POD, p["metadata"]["name"], p["metadata"]["namespace"])
        await self._write(mig, new)
        self.sim.recorder.warning(mig, "FailedMigration", message)
        if vmi is not None:
            self.sim.recorder.warning(vmi, "FailedMigration", message)

    async def _abort(self, mig, vmi):
        """A deleted (cancelled) migration, as KubeVirt's migration controller handles it: an ended one
        loses the finalizer; one not ended gets the AbortRequested condition and fails ("Migration failed
        due to being canceled"), after the node has aborted it when it was handed over already
        (migrationState.abortRequested, then abortStatus Succeeded). It keeps the finalizer until its
        phase is final, so for that while virt-api refuses another migration of the VMI."""
        uid = mig["metadata"]["uid"]
        if dig(mig, "status", "phase") in phases.MIGRATION_FINAL:
            self.configurations.pop(uid, None)
            await self._drop_finalizer(mig)
            return
        new = deep(mig)
        st = new.setdefault("status", {})
        if get_condition(new, "AbortRequested") is None:
            st.setdefault("conditions", []).append({"type": "AbortRequested", "status": "True",
                                                    "lastProbeTime": ts()})
        state = dig(vmi, "status", "migrationState") or {} if vmi else {}
        if state.get("migrationUid") == uid and not state.get("completed"):
            # Handed over: the source node aborts the migration first (it takes a step).
            if not state.get("abortRequested"):
                def request(vnew):
                    vnew["status"]["migrationState"]["abortRequested"] = True
                await self._mutate_vmi(vmi, request)
                await self._write(mig, new)
                self.enqueue(key_of(mig), after=self.step())
                return

            def aborted(vnew):
                vnew["status"]["migrationState"]["abortStatus"] = "Succeeded"
            await self._mutate_vmi(vmi, aborted)
            vmi = self.sim.cache.vmis.get_ns(vmi["metadata"]["namespace"], vmi["metadata"]["name"]) or vmi
        await self._fail(mig, new, vmi, "Migration failed due to being canceled")
        self.enqueue(key_of(mig))   # ended: the next pass lets it go

    async def _drop_finalizer(self, mig):
        fins = mig["metadata"].get("finalizers") or []
        if FINALIZER not in fins:
            return
        try:
            await self.sim.kube.patch(VMIM, mig["metadata"]["name"], [
                {"op": "test", "path": "/metadata/finalizers", "value": fins},
                {"op": "replace", "path": "/metadata/finalizers", "value": [f for f in fins if f != FINALIZER]}],
                mig["metadata"]["namespace"], kind="json")
        except ApiError as exc:
            if exc.status not in (404, 409, 422):
                raise
            self.enqueue(key_of(mig), after=0.1)   # changed meanwhile: look again

    async def _write(self, old, new):
        if old == new:
            return
        body = deep(new)
        meta_patch = {key: new["metadata"].get(key) for key in ("labels", "annotations", "finalizers")
                      if old.get("metadata", {}).get(key) != new["metadata"].get(key)}
        if meta_patch:
            patched = await self.sim.kube.patch(VMIM, new["metadata"]["name"], {"metadata": meta_patch},
                                                new["metadata"]["namespace"])
            body["metadata"]["resourceVersion"] = patched["metadata"]["resourceVersion"]
            body["metadata"]["finalizers"] = patched["metadata"].get("finalizers")
        if old.get("status") != new.get("status"):
            await self.sim.cache.vmims.replace(body, sub="status")

    async def _mutate_vmi(self, vmi, mutate):
        cur = vmi
        for attempt in range(6):
            new = deep(cur)
            new.setdefault("status", {})
            mutate(new)
            if new == cur:
                return
            try:
                updated = await self.sim.kube.replace(VMI, new)
                self.sim.cache.vmis.observe(updated)
                return
            except ApiError as exc:
                if exc.status != 409 or attempt == 5:
                    raise
                cur = await self.sim.kube.get(VMI, vmi["metadata"]["name"], vmi["metadata"]["namespace"])


def _migrating(vmi):
    """migrations.IsMigrating: a migration state that has started and not ended."""
    state = dig(vmi, "status", "migrationState") or {}
    return bool(state.get("startTimestamp")) and not state.get("endTimestamp")
