#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: virtops.kubevirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: vm_monitor_report
short_description: Write the vm_monitor report's JSON, Markdown and HTML files in one task
version_added: 0.1.0
author:
  - virtops.kubevirt developers (!UNKNOWN)
description:
  - Writes the report that the P(virtops.kubevirt.vm_monitor_report#filter) filter builds (the
    R(vm_monitor role,ansible_collections.virtops.kubevirt.docsite.roles) uses this module) as a JSON file,
    a Markdown file and a self-contained HTML page, rendered in one pass.
  - An action plugin only, run on the controller by Ansible's worker (no module process); the files are
    written on the controller. Only their paths and the report's totals are returned, so a report over
    thousands of VMs does not pass through Ansible's callbacks.
  - The JSON is what C(to_nice_json(indent=2)) gives. The templates are rendered by Jinja2 with Ansible's
    settings for templates (C(trim_blocks), trailing newlines kept), Jinja2's filters and tests,
    C(ansible.builtin)'s core filters and this collection's filters; the report is the variable C(report).
  - Each file is written through a temporary file in the same directory (readers never see half a file),
    and only when its content or mode differs.
options:
  report:
    description:
      - The report, as the P(virtops.kubevirt.vm_monitor_report#filter) filter returns it.
    type: dict
    required: true
  dir:
    description:
      - Directory of the files, created (mode V(0755)) when missing; symbolic links are resolved.
    type: path
    required: true
  name:
    description:
      - File name without extension; the files are O(name).json, O(name).md and O(name).html.
    type: str
    default: vm-health
  formats:
    description:
      - Which files to write.
    type: list
    elements: str
    choices: [json, markdown, html]
    default: [json, markdown, html]
  markdown_template:
    description:
      - Template of the Markdown file, searched like the template module's C(src) (the role's C(templates/) first).
    type: str
    default: report.md.j2
  html_template:
    description:
      - Template of the HTML file, searched like O(markdown_template).
    type: str
    default: report.html.j2
  mode:
    description:
      - Mode of the files, an octal string such as V('0644').
    type: raw
    default: '0644'
attributes:
  action:
    description: An action plugin only; it runs on the controller.
    support: full
  check_mode:
    description: Renders the files and reports which would change; writes nothing.
    support: full
  diff_mode:
    description: >-
      The files' contents before and after, for files up to Ansible's C(max_diff_size); larger ones are
      shown by their size.
    support: full
  platform:
    description: The controller.
    support: full
    platforms: posix
seealso:
  - module: ansible.builtin.template
"""

EXAMPLES = r"""
- name: Write the report built by the vm_monitor_report filter
  virtops.kubevirt.vm_monitor_report:
    report: "{{ vm_monitor_report }}"
    dir: reports
    formats: [json, html]
  register: written

- name: Show where
  ansible.builtin.debug:
    msg: "{{ written.files.html }}"
"""

RETURN = r"""
files:
  description: Path of each file asked for, by format.
  returned: always
  type: dict
  sample: {"json": "/home/ops/reports/vm-health.json", "html": "/home/ops/reports/vm-health.html"}
dir:
  description: The directory of the files, symbolic links resolved.
  returned: always
  type: str
  sample: /home/ops/reports
changed_formats:
  description: The formats whose file was (in check mode, would be) written.
  returned: always
  type: list
  elements: str
  sample: [json, markdown, html]
totals:
  description: The report's C(totals) (VMs, healthy, unhealthy, by severity and by status).
  returned: always
  type: dict
  sample: {"vms": 2, "healthy": 1, "unhealthy": 1}
"""
