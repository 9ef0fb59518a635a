# Copyright (c) virtops.kubevirt developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""virtops.kubevirt.vm_monitor_report: the vm_monitor report's JSON, Markdown and HTML files in one task.

Runs in Ansible's worker on the controller, with no module process: the files are rendered in one
Python pass (plugin_utils/report_files.py) and only their paths and the report's totals come back,
so the report's MiB never pass through the callbacks. Documentation: plugins/modules/vm_monitor_report.py.
"""

from __future__ import annotations

import os

from ansible import constants as C
from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase

from ansible_collections.virtops.kubevirt.plugins.plugin_utils import report_files

ARGUMENT_SPEC = {
    "report": {"type": "dict", "required": True},
    "dir": {"type": "path", "required": True},
    "name": {"type": "str", "default": "vm-health"},
    "formats": {"type": "list", "elements": "str", "default": ["json", "markdown", "html"],
                "choices": list(report_files.FORMATS)},
    "markdown_template": {"type": "str", "default": "report.md.j2"},
    "html_template": {"type": "str", "default": "report.html.j2"},
    "mode": {"type": "raw", "default": "0644"},
}


def _mode(value):
    """'0644', '644' or 0o644 -> an int; anything else names the option."""
    try:
        return int(value, 8) if isinstance(value, str) else int(value)
    except (TypeError, ValueError):
        raise AnsibleActionFail("mode must be an octal file mode such as '0644', got %r." % (value,))


def _diff(path, before, after):
    """A diff entry, with the contents only up to Ansible's max_diff_size (the report can be MiB)."""
    entry = {"before_header": path, "after_header": path}
    if max(len(before or ""), len(after)) > C.MAX_FILE_SIZE_FOR_DIFF:
        entry.update(before="(%d characters)\n" % len(before) if before is not None else "",
                     after="(%d characters)\n" % len(after))
    else:
        entry.update(before=before or "", after=after)
    return entry


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        _validation, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        name = args["name"]
        if not name or "/" in name or name in (".", ".."):
            raise AnsibleActionFail("name must be a file name without a directory, got %r." % name)
        mode = _mode(args["mode"])
        formats = list(dict.fromkeys(args["formats"]))
        directory = os.path.realpath(os.path.expanduser(args["dir"]))
        if os.path.exists(directory) and not os.path.isdir(directory):
            raise AnsibleActionFail("dir %s exists and is not a directory." % directory)

        templates = {}
        for fmt in ("markdown", "html"):
            if fmt in formats:
                option = fmt + "_template"
                try:
                    source = self._find_needle("templates", args[option])
                except Exception as exc:  # AnsibleError with its own sentence: where it looked
                    raise AnsibleActionFail("%s %s was not found: %s" % (option, args[option], to_text(exc)))
                with open(source, encoding="utf-8") as handle:
                    templates[fmt] = handle.read()
        try:
            texts = report_files.render(args["report"], formats, templates)
        except Exception as exc:  # a template's or the report's fault, not a traceback
            raise AnsibleActionFail("The report could not be rendered: %s" % to_text(exc))

        files, changed, diffs = {}, [], []
        for fmt in formats:
            path = os.path.join(directory, "%s.%s" % (name, report_files.FORMATS[fmt]))
            files[fmt] = path
            before = None
            if os.path.isfile(path):
                with open(path, encoding="utf-8", errors="replace") as handle:
                    before = handle.read()
            same_mode = before is not None and (os.stat(path).st_mode & 0o7777) == mode
            if before == texts[fmt] and same_mode:
                continue
            changed.append(fmt)
            if self._task.diff:
                diffs.append(_diff(path, before, texts[fmt]))
            if not self._task.check_mode:
                os.makedirs(directory, mode=0o755, exist_ok=True)
                report_files.write_atomically(path, texts[fmt], mode)

        result.update(changed=bool(changed), files=files, dir=directory, changed_formats=changed,
                      totals=args["report"].get("totals", {}))
        if diffs:
            result["diff"] = diffs
        return result
