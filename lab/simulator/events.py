"""core/v1 Events, written the way client-go's recorder does (with count aggregation)."""
import asyncio
import logging
import os
import time

from .kube import EVENT, ApiError
from .util import ts

log = logging.getLogger("simulator.events")


class Recorder:
    def __init__(self, kube, host="kubevirt-simulator"):
        self.kube = kube
        self.host = host
        self._seen = {}          # (uid, component, reason, message) -> (event name, count, namespace)
        self._sem = asyncio.Semaphore(8)
        self._tasks = set()
        self.sent = 0

    def event(self, obj, etype, reason, message, component="virt-controller"):
        """Fire and forget: events must never block or fail a reconcile."""
        task = asyncio.get_running_loop().create_task(self._send(obj, etype, reason, message, component))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def normal(self, obj, reason, message, component="virt-controller"):
        self.event(obj, "Normal", reason, message, component)

    def warning(self, obj, reason, message, component="virt-controller"):
        self.event(obj, "Warning", reason, message, component)

    async def _send(self, obj, etype, reason, message, component):
        meta = obj["metadata"]
        ns = meta.get("namespace") or "default"
        key = (meta.get("uid"), component, reason, message)
        stamp = ts()
        async with self._sem:
            try:
                seen = self._seen.get(key)
                if seen:
                    name, count = seen
                    count += 1
                    await self.kube.patch(EVENT, name, {"count": count, "lastTimestamp": stamp}, ns)
                    self._seen[key] = (name, count)
                    return
                body = {
                    "apiVersion": "v1", "kind": "Event",
                    "metadata": {"name": f"{meta['name']}.{time.time_ns():x}{os.getpid() % 256:02x}",
                                 "namespace": ns},
                    "involvedObject": {"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"),
                                       "name": meta["name"], "namespace": meta.get("namespace"),
                                       "uid": meta.get("uid"), "resourceVersion": meta.get("resourceVersion")},
                    "reason": reason, "message": message, "type": etype,
                    "source": {"component": component, "host": self.host},
                    "firstTimestamp": stamp, "lastTimestamp": stamp, "count": 1,
                    "reportingComponent": component, "reportingInstance": self.host,
                }
                created = await self.kube.create(EVENT, body, ns)
                self.sent += 1
                if len(self._seen) > 20000:
                    self._seen.clear()
                self._seen[key] = (created["metadata"]["name"], 1)
            except ApiError as exc:
                if exc.status == 404:           # the aggregated event was deleted: start over
                    self._seen.pop(key, None)
                elif exc.status != 403:          # namespace terminating etc.
                    log.debug("event %s/%s: %s", ns, reason, exc)
            except Exception as exc:
                log.debug("event %s/%s: %r", ns, reason, exc)
