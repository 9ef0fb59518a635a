"""Wiring: one process, one API client, informers feeding the controllers, the HTTPS server."""
import asyncio
import logging
import resource
import tempfile
import time

from . import hotplug
from . import kube as k
from .cdi import CDIController
from .credentials import AccessCredentials
from .csisnapshot import CsiSnapshotter
from .clone import CloneController
from .events import Recorder
from .export import ExportController
from .kubelet import Kubelet
from .migration import MigrationController
from .nodes import NodeAgent
from .pool import PoolController
from .realguest import Guests
from .replicaset import ReplicaSetController
from .restore import RestoreController
from .runtime import Caches
from .scheduler_ctl import Scheduler
from .snapshot import SnapshotController
from .storage import Provisioner
from .util import dig
from .vm import VMController
from .vmi import VMIController
from .volumedata import VolumeData

log = logging.getLogger("simulator")


class Sim:
    def __init__(self, args):
        self.args = args
        self.kube = k.Kube(args.kubeconfig)
        self.boot_delay = float(args.boot_delay)
        self.node_count = int(args.nodes)
        self.node_names = [f"lab-worker-{i}" for i in range(self.node_count)]
        self.port = int(args.listen.rsplit(":", 1)[1])
        self.user = ""
        self.started = time.time()
        self.cache = None   # runtime.Caches: the informers, one attribute per kind

    # --- shared lookups over the caches -------------------------------------------------------
    def vmi_pods(self, vmi, include_done=False):
        uid = vmi["metadata"]["uid"]
        ns = vmi["metadata"]["namespace"]
        out = []
        for pod in self.cache.pods.store.values():
            meta = pod["metadata"]
            if meta.get("namespace") != ns or (meta.get("labels") or {}).get("kubevirt.io/created-by") != uid:
                continue
            if not include_done and dig(pod, "status", "phase") in ("Succeeded", "Failed"):
                continue
            out.append(pod)
        return out

    def node_index(self, node_name):
        try:
            return self.node_names.index(node_name)
        except ValueError:
            return 0

    def rss_mb(self):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    # --- routing informer events to controllers ------------------------------------------
    def _wire(self):
        cache = self.cache

        def on_vm(ev, obj, old):
            self.vm_ctl.enqueue(k.key_of(obj))
            self.pool_ctl.enqueue_for_vm(obj)
            self.export_ctl.enqueue_namespace(obj["metadata"]["namespace"])
            self.clone_ctl.enqueue_namespace(obj["metadata"]["namespace"])
            self.snapshot_ctl.enqueue("vm/" + k.key_of(obj))
            self._snapshots_of_namespace(obj)

        def on_vmi(ev, obj, old):
            key = k.key_of(obj)
            self.vmi_ctl.enqueue(key)
            self.vm_ctl.enqueue(key)
            self.migration_ctl.enqueue_for_vmi(obj)
            self.replicaset_ctl.enqueue_for_vmi(obj, old if ev == "MODIFIED" else None)
            self.export_ctl.enqueue_namespace(obj["metadata"]["namespace"])
            self.pool_ctl.enqueue_for_vmi(obj)
            self._snapshots_of_namespace(obj)

        def on_pod(ev, obj, old):
            meta = obj["metadata"]
            key = k.key_of(obj)
            node = dig(obj, "spec", "nodeName")
            if node in self.node_names or meta.get("deletionTimestamp"):
                self.kubelet.enqueue(key)
            labels = meta.get("labels") or {}
            self.export_ctl.enqueue_owner(obj)
            if ev == "DELETED" or dig(old, "status", "phase") != dig(obj, "status", "phase"):
                self.export_ctl.enqueue_namespace(meta["namespace"])   # a claim's user came or went
            if labels.get("kubevirt.io") == hotplug.LABEL:
                # an attachment pod: wake the VMI of the launcher pod that owns it
                for ref in meta.get("ownerReferences") or []:
                    launcher = cache.pods.get_ns(meta["namespace"], ref.get("name")) \
                        if ref.get("kind") == "Pod" else None
                    for lref in (launcher or {}).get("metadata", {}).get("ownerReferences") or []:
                        if lref.get("kind") == "VirtualMachineInstance":
                            self.vmi_ctl.enqueue(f"{meta['namespace']}/{lref['name']}")
            if labels.get("kubevirt.io") == "virt-launcher":
                if not node:
                    self.scheduler.enqueue(key)
                for ref in meta.get("ownerReferences") or []:
                    if ref.get("kind") == "VirtualMachineInstance":
                        self.vmi_ctl.enqueue(f"{meta['namespace']}/{ref['name']}")
                if ev == "DELETED":
                    self.scheduler.retry_pending()
                if ev == "DELETED" or "kubevirt.io/migrationJobUID" in labels:
                    for mig in cache.vmims.items(meta["namespace"]):
                        self.migration_ctl.enqueue(k.key_of(mig))

        def on_pvc(ev, obj, old):
            ns = obj["metadata"]["namespace"]
            self.provisioner.enqueue(k.key_of(obj))
            self.cdi.enqueue(k.key_of(obj))
            self.export_ctl.enqueue_namespace(ns)
            for vmi in cache.vmis.items(ns):
                self.vmi_ctl.enqueue(k.key_of(vmi))
            for vm in cache.vms.items(ns):
                self.vm_ctl.enqueue(k.key_of(vm))
            for pod in cache.pods.items(ns):
                if dig(pod, "spec", "nodeName") in self.node_names:
                    self.kubelet.enqueue(k.key_of(pod))
            for vs in cache.volumesnapshots.items(ns):
                self.csi_snapshotter.enqueue("vs/" + k.key_of(vs))
            for vm in cache.vms.items(ns):
                self.snapshot_ctl.enqueue("vm/" + k.key_of(vm))
            self._snapshots_of_namespace(obj)

        def on_pv(ev, obj, old):
            self.provisioner.enqueue("pv/" + obj["metadata"]["name"])

        def on_dv(ev, obj, old):
            ns = obj["metadata"]["namespace"]
            self.cdi.enqueue(k.key_of(obj))
            for vm in cache.vms.items(ns):
                self.vm_ctl.enqueue(k.key_of(vm))
                self.snapshot_ctl.enqueue("vm/" + k.key_of(vm))   # handleDV: the VMs' volumeSnapshotStatuses
            for vmi in cache.vmis.items(ns):
                self.vmi_ctl.enqueue(k.key_of(vmi))

        def on_nad(ev, obj, old):
            for vmi in cache.vmis.items(obj["metadata"]["namespace"]):
                self.vmi_ctl.enqueue(k.key_of(vmi))

        def on_node(ev, obj, old):
            if ev != "MODIFIED" or dig(obj, "spec") != dig(old, "spec"):
                self.scheduler.retry_pending()
            if ev == "DELETED" and obj["metadata"]["name"] in self.node_names:
                self.nodes.kick()

        def on_vmim(ev, obj, old):
            self.migration_ctl.enqueue(k.key_of(obj))

        def on_replicaset(ev, obj, old):
            self.replicaset_ctl.enqueue(k.key_of(obj))

        def on_pool(ev, obj, old):
            self.pool_ctl.enqueue(k.key_of(obj))

        def on_export(ev, obj, old):
            self.export_ctl.enqueue(k.key_of(obj))

        def on_clone(ev, obj, old):
            self.clone_ctl.enqueue(k.key_of(obj))
        def on_volume_snapshot(ev, obj, old):
            self.csi_snapshotter.enqueue("vs/" + k.key_of(obj))
            for ref in obj["metadata"].get("ownerReferences") or []:
                if ref.get("kind") == "VirtualMachineSnapshotContent":
                    self.snapshot_ctl.enqueue(f"content/{obj['metadata']['namespace']}/{ref['name']}")
            self._snapshots_of_namespace(obj)

        def on_volume_snapshot_content(ev, obj, old):
            self.csi_snapshotter.enqueue("content/" + obj["metadata"]["name"])
            ref = dig(obj, "spec", "volumeSnapshotRef", default={}) or {}
            if ref.get("name"):
                self.csi_snapshotter.enqueue(f"vs/{ref.get('namespace')}/{ref['name']}")

        def on_snapshot_class(ev, obj, old):
            for vm in cache.vms.items():
                self.snapshot_ctl.enqueue("vm/" + k.key_of(vm))

        def on_vm_snapshot(ev, obj, old):
            self.snapshot_ctl.enqueue("snap/" + k.key_of(obj))
            self.snapshot_ctl.enqueue(f"content/{obj['metadata']['namespace']}/"
                                      f"{dig(obj, 'status', 'virtualMachineSnapshotContentName') or ''}")
            for restore in cache.vmrestores.items(obj["metadata"]["namespace"]):
                self.restore_ctl.enqueue(k.key_of(restore))
            self.clone_ctl.enqueue_namespace(obj["metadata"]["namespace"])

        def on_vm_snapshot_content(ev, obj, old):
            self.snapshot_ctl.enqueue("content/" + k.key_of(obj))
            name = dig(obj, "spec", "virtualMachineSnapshotName")
            if name:
                self.snapshot_ctl.enqueue(f"snap/{obj['metadata']['namespace']}/{name}")

        def on_vm_restore(ev, obj, old):
            self.restore_ctl.enqueue(k.key_of(obj))
            self.clone_ctl.enqueue_owner(obj)

        cache.vms.add_handler(on_vm)
        cache.vmis.add_handler(on_vmi)
        cache.pods.add_handler(on_pod)
        cache.pvcs.add_handler(on_pvc)
        cache.pvs.add_handler(on_pv)
        cache.dvs.add_handler(on_dv)
        cache.nads.add_handler(on_nad)
        cache.nodes.add_handler(on_node)
        cache.vmims.add_handler(on_vmim)
        cache.replicasets.add_handler(on_replicaset)
        cache.pools.add_handler(on_pool)
        cache.exports.add_handler(on_export)
        cache.clones.add_handler(on_clone)
        cache.volumesnapshots.add_handler(on_volume_snapshot)
        cache.volumesnapshotcontents.add_handler(on_volume_snapshot_content)
        cache.volumesnapshotclasses.add_handler(on_snapshot_class)
        cache.storageclasses.add_handler(on_snapshot_class)
        cache.vmsnapshots.add_handler(on_vm_snapshot)
        cache.vmsnapshotcontents.add_handler(on_vm_snapshot_content)
        cache.vmrestores.add_handler(on_vm_restore)

    def _snapshots_of_namespace(self, obj):
        """A VM, VMI, claim or VolumeSnapshot changed: the snapshot and restore work of its namespace may move
        (KubeVirt's snapshot controller watches them all the same way)."""
        cache = self.cache
        ns = obj["metadata"].get("namespace")
        for snap in cache.vmsnapshots.items(ns):
            self.snapshot_ctl.enqueue("snap/" + k.key_of(snap))
        for content in cache.vmsnapshotcontents.items(ns):
            self.snapshot_ctl.enqueue("content/" + k.key_of(content))
        for restore in cache.vmrestores.items(ns):
            self.restore_ctl.enqueue(k.key_of(restore))

    async def run(self):
        from . import register
        from .server import serve

        await self.kube.start()
        self.user = await self.kube.whoami()
        log.info("simulator identity %s, %d nodes, boot delay %.1fs", self.user, self.node_count, self.boot_delay)
        self.recorder = Recorder(self.kube)
        self.cache = Caches(self.kube)
        self.nodes = NodeAgent(self)
        self.kubelet = Kubelet(self)
        self.scheduler = Scheduler(self)
        self.vm_ctl = VMController(self)
        self.vmi_ctl = VMIController(self)
        self.hotplug = hotplug.Hotplug(self)
        self.provisioner = Provisioner(self)
        self.cdi = CDIController(self)
        self.migration_ctl = MigrationController(self)
        self.replicaset_ctl = ReplicaSetController(self)
        self.pool_ctl = PoolController(self)
        self.export_ctl = ExportController(self)
        self.clone_ctl = CloneController(self)
        self.csi_snapshotter = CsiSnapshotter(self)
        self.snapshot_ctl = SnapshotController(self)
        self.restore_ctl = RestoreController(self)
        self.guests = Guests(self)
        self.volumes = VolumeData(self.args.volume_dir or tempfile.gettempdir() + "/virtops-lab-volumes")
        self.credentials = AccessCredentials(self)
        self._wire()
        runners = await serve(self)           # virt-api, webhooks, metrics, healthz
        informers = self.cache.all()
        tasks = [asyncio.create_task(i.run(), name=f"informer-{i.res.plural}") for i in informers]
        await asyncio.wait_for(asyncio.gather(*(i.synced.wait() for i in informers)), timeout=120)
        await register.register(self)
        self.guests.adopt()
        tasks.append(asyncio.create_task(self.nodes.run(), name="nodes"))
        for ctl in (self.kubelet, self.scheduler, self.vm_ctl, self.vmi_ctl, self.provisioner, self.cdi,
                    self.migration_ctl, self.replicaset_ctl, self.pool_ctl, self.export_ctl, self.clone_ctl,
                    self.csi_snapshotter,
                    self.snapshot_ctl, self.restore_ctl):
            tasks.append(asyncio.create_task(ctl.run(), name=ctl.name))
        tasks.append(asyncio.create_task(self._report(), name="report"))
        self.ready = True
        log.info("simulator ready: virt-api on %s, metrics on %s", self.args.listen, self.args.metrics_listen)
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for t in done:
                if t.exception():
                    raise t.exception()
        finally:
            self.guests.close()
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in pending:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            for r in runners:
                await r.cleanup()
            await self.kube.close()

    async def _report(self):
        while True:
            await asyncio.sleep(60)
            log.info("stats: %d API requests, %d events, rss peak %.0f MB, %d VMIs",
                     self.kube.requests, self.recorder.sent, self.rss_mb(),
                     len(self.cache.vmis.store))
