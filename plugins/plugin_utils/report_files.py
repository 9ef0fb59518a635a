# Copyright (c) virtops.kubevirt developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The vm_monitor report's files (JSON, Markdown, HTML) from the report dict, in one Python pass.

The vm_monitor_report action is their one home. Rendering them with Ansible's own templating (a copy
task with to_nice_json, two template tasks) costs seconds per MiB: every value of the report goes
through the lazy templating layer, each task runs its module processes, and the report's MiB travel
through the callbacks (docs/benchmarks.md). Here the JSON is what to_nice_json(indent=2) gives and the
templates (the role's report.md.j2 and report.html.j2, or the user's own) are rendered by plain Jinja2
with Ansible's settings for templates (trim_blocks, the template's trailing newlines kept), Jinja2's
filters and tests, ansible.builtin's core filters and this collection's filters.
"""

from __future__ import annotations

import json
import os
import tempfile

import jinja2

FORMATS = {"json": "json", "markdown": "md", "html": "html"}  # format -> file extension
COLLECTION = "virtops.kubevirt."


def report_json(report):
    """The JSON file: exactly what ``to_nice_json(indent=2)`` and a newline give."""
    return json.dumps(report, indent=2, sort_keys=True, separators=(",", ": ")) + "\n"


def _filters(builtins):
    """Ansible's core filters (short and ansible.builtin. names) and this collection's, by their FQCN. Where
    ansible-core redefines a Jinja2 builtin (default, map, select...) for its own templating, Jinja2's stays."""
    from ansible.plugins.filter.core import FilterModule as CoreFilters
    from ansible_collections.virtops.kubevirt.plugins.filter import charts, health, monitor

    found = {}
    for name, fn in CoreFilters().filters().items():
        found[name] = found["ansible.builtin." + name] = builtins.get(name, fn)
    for module in (charts, health, monitor):
        for name, fn in module.FilterModule().filters().items():
            found[COLLECTION + name] = fn
    return found


_ENVIRONMENT = []


def environment():
    """One Jinja2 environment for the process: Ansible's template settings, the filters above."""
    if not _ENVIRONMENT:
        env = jinja2.Environment(trim_blocks=True, autoescape=False, undefined=jinja2.StrictUndefined)
        env.filters.update(_filters(env.filters))
        _ENVIRONMENT.append(env)
    return _ENVIRONMENT[0]


def render_template(source, report):
    """A report template (its text) with ``report`` bound, trailing newlines as the template module keeps them."""
    text = environment().from_string(source).render(report=report)
    missing = (len(source) - len(source.rstrip("\n"))) - (len(text) - len(text.rstrip("\n")))
    return text + "\n" * max(missing, 0)


def render(report, formats, templates):
    """{format: text} for each of ``formats``; ``templates`` maps markdown/html to their template text."""
    return {fmt: report_json(report) if fmt == "json" else render_template(templates[fmt], report)
            for fmt in formats}


def write_atomically(path, text, mode):
    """Write ``text`` to ``path`` through a temporary file in its directory (readers never see half a file)."""
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".%s." % os.path.basename(path))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
