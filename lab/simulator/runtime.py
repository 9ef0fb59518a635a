"""Informers (list + watch into a cache) and work-queue controllers, like client-go's.

The caches are only a mirror of the API: after a restart they are rebuilt by listing, so the
simulator keeps no state of its own.
"""
import asyncio
import logging
import random
import time

from . import kube as k
from .kube import ApiError, key_of, rv_int

log = logging.getLogger("simulator.runtime")


class Informer:
    """Mirror one resource type; call handlers(event, obj, old) on changes."""

    def __init__(self, kube, res, namespace=None, label_selector=None):
        self.kube, self.res = kube, res
        self.namespace, self.label_selector = namespace, label_selector
        self.store = {}
        self.handlers = []
        self.synced = asyncio.Event()
        self.relists = 0
        self._deleted = {}

    def add_handler(self, fn):
        self.handlers.append(fn)

    def get(self, key):
        return self.store.get(key)

    def get_ns(self, namespace, name):
        return self.store.get(f"{namespace}/{name}" if namespace else name)

    def items(self, namespace=None):
        if namespace is None:
            return list(self.store.values())
        return [o for o in self.store.values() if o["metadata"].get("namespace") == namespace]

    def observe(self, obj):
        """Record an object a write just returned (newer than the cache until the watch catches up)."""
        if not obj or "metadata" not in obj:
            return
        key = key_of(obj)
        meta = obj["metadata"]
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            return      # the write removed the last finalizer: the object is gone
        if self._deleted.get(key, -1) >= rv_int(obj):
            return      # the watch already told us it was deleted
        old = self.store.get(key)
        if old is None or rv_int(obj) > rv_int(old):
            self.store[key] = obj

    async def replace(self, obj, sub=None):
        """PUT `obj` (with sub="status" its status) and keep what the server returned in the cache;
        None when the object is gone (404)."""
        try:
            updated = await self.kube.replace(self.res, obj, sub=sub)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise
        self.observe(updated)
        return updated

    def forget(self, key):
        self.store.pop(key, None)

    def _emit(self, event, obj, old=None):
        for fn in self.handlers:
            try:
                fn(event, obj, old)
            except Exception:  # a handler bug must not kill the informer
                log.exception("handler failed for %s %s", self.res.plural, key_of(obj))

    async def run(self):
        backoff = 0.2
        while True:
            try:
                rv = await self._relist()
                self.synced.set()
                backoff = 0.2
                while True:
                    rv = await self._watch(rv)
            except asyncio.CancelledError:
                raise
            except ApiError as exc:
                if exc.status != 410:
                    log.warning("watch %s: %s", self.res.plural, exc)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 5)
            except Exception as exc:  # connection reset, apiserver restart, ...
                log.warning("watch %s failed: %r; relisting", self.res.plural, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5)

    async def _relist(self):
        self.relists += 1
        data = await self.kube.list(self.res, self.namespace, label_selector=self.label_selector)
        fresh = {key_of(o): o for o in data.get("items", [])}
        for o in data.get("items", []):
            o.setdefault("apiVersion", self.res.api_version)
            o.setdefault("kind", self.res.kind)
        for key in list(self.store):
            if key not in fresh:
                old = self.store.pop(key)
                self._emit("DELETED", old, old)
        for key, obj in fresh.items():
            old = self.store.get(key)
            if old is not None and rv_int(old) > rv_int(obj):
                continue
            self.store[key] = obj
            self._emit("ADDED" if old is None else "MODIFIED", obj, old)
        return data["metadata"]["resourceVersion"]

    async def _watch(self, rv):
        async for typ, obj in self.kube.watch(self.res, rv, self.namespace, self.label_selector):
            if typ == "ERROR":
                code = obj.get("code", 500)
                raise ApiError(code, obj)
            rv = obj["metadata"]["resourceVersion"]
            if typ == "BOOKMARK":
                continue
            key = key_of(obj)
            old = self.store.get(key)
            if typ == "DELETED":
                self.store.pop(key, None)
                if len(self._deleted) > 10000:
                    self._deleted.clear()
                self._deleted[key] = rv_int(obj)
                self._emit("DELETED", obj, old)
                continue
            if old is not None and rv_int(old) > rv_int(obj):
                continue  # we already saw a newer version from our own write
            self.store[key] = obj
            self._emit(typ, obj, old)
        return rv


class Caches:
    """The simulator's informer caches, one typed attribute per kind (`sim.cache.vmis.get_ns(ns, name)`),
    like the listers of client-go's shared informer factory."""

    def __init__(self, kube):
        self.vms = Informer(kube, k.VM)
        self.vmis = Informer(kube, k.VMI)
        self.pods = Informer(kube, k.POD)
        self.pvcs = Informer(kube, k.PVC)
        self.pvs = Informer(kube, k.PV)
        self.dvs = Informer(kube, k.DV)
        self.nads = Informer(kube, k.NAD)
        self.nodes = Informer(kube, k.NODE)
        self.storageclasses = Informer(kube, k.SC)
        self.vmims = Informer(kube, k.VMIM)
        self.replicasets = Informer(kube, k.VMIRS)
        self.pools = Informer(kube, k.POOL)
        self.migrationpolicies = Informer(kube, k.MIGRATION_POLICY)
        self.vmsnapshots = Informer(kube, k.VMSNAPSHOT)
        self.vmsnapshotcontents = Informer(kube, k.VMSNAPSHOT_CONTENT)
        self.vmrestores = Informer(kube, k.VMRESTORE)
        self.volumesnapshots = Informer(kube, k.VOLUME_SNAPSHOT)
        self.volumesnapshotclasses = Informer(kube, k.VOLUME_SNAPSHOT_CLASS)
        self.volumesnapshotcontents = Informer(kube, k.VOLUME_SNAPSHOT_CONTENT)

    def all(self):
        """Every informer, in the order they are started."""
        return [inf for inf in vars(self).values() if isinstance(inf, Informer)]


class Controller:
    """A work queue of keys with N workers; sync(key) reconciles one object.

    Like client-go: a key is never processed by two workers at once; a key enqueued while it is
    processed is processed again afterwards; failures are retried with backoff.
    """

    name = "controller"
    workers = 4

    def __init__(self, sim):
        self.sim = sim
        self.log = logging.getLogger(f"simulator.{self.name}")
        self._queue = asyncio.Queue()
        self._queued = set()
        self._active = set()
        self._dirty = set()
        self._failures = {}
        self._timers = {}
        self.marks = {}       # per-object clocks (util.since): key -> monotonic time it started

    def enqueue(self, key, after=None):
        if after is not None and after > 0:
            when = time.monotonic() + after
            prev = self._timers.get(key)
            if prev is not None and prev[0] <= when and not prev[1].cancelled():
                return
            if prev is not None:
                prev[1].cancel()
            handle = asyncio.get_running_loop().call_later(after, self._fire, key)
            self._timers[key] = (when, handle)
            return
        if key in self._active:
            self._dirty.add(key)
            return
        if key in self._queued:
            return
        self._queued.add(key)
        self._queue.put_nowait(key)

    def _fire(self, key):
        self._timers.pop(key, None)
        self.enqueue(key)

    async def run(self):
        await asyncio.gather(*(self._worker() for _ in range(self.workers)))

    async def _worker(self):
        while True:
            key = await self._queue.get()
            self._queued.discard(key)
            self._active.add(key)
            try:
                await self.sync(key)
                self._failures.pop(key, None)
            except asyncio.CancelledError:
                raise
            except ApiError as exc:
                n = self._failures.get(key, 0) + 1
                self._failures[key] = n
                delay = 0.05 if exc.status == 409 else min(0.2 * 2 ** min(n, 6), 10)
                if exc.status != 409:
                    self.log.info("%s: %s (retry in %.1fs)", key, exc, delay)
                self.enqueue(key, after=delay + random.random() * 0.05)
            except Exception:
                n = self._failures.get(key, 0) + 1
                self._failures[key] = n
                self.log.exception("%s: sync failed", key)
                self.enqueue(key, after=min(0.5 * 2 ** min(n, 5), 10))
            finally:
                self._active.discard(key)
                if key in self._dirty:
                    self._dirty.discard(key)
                    self.enqueue(key)

    async def sync(self, key):  # pragma: no cover - abstract
        raise NotImplementedError
