# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Records each task's wall time (and result flags) as JSON lines in $BENCH_TIMINGS.

Benchmarks compare single tasks, not whole ansible-playbook runs, so Ansible's own start-up
(the same for both collections) does not dilute the ratios.
"""
from __future__ import annotations

import json
import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = r"""
name: bench_timer
type: aggregate
short_description: per-task wall times for the benchmarks
description: Writes one JSON line per finished task to the file named by BENCH_TIMINGS.
requirements: [enable in ansible.cfg or ANSIBLE_CALLBACKS_ENABLED]
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "bench_timer"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self._path = os.environ.get("BENCH_TIMINGS")
        self._started = {}

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._started[task._uuid] = (task.get_name(), time.time())

    def _record(self, result, status):
        name, start = self._started.get(result._task._uuid, (result._task.get_name(), time.time()))
        if not self._path:
            return
        end = time.time()
        with open(self._path, "a", encoding="utf-8") as out:
            out.write(json.dumps({"task": name, "host": result._host.get_name(), "status": status,
                                  "start": start, "end": end, "seconds": end - start}) + "\n")

    def v2_runner_on_ok(self, result):
        self._record(result, "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record(result, "failed")
