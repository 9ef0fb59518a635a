"""virtops.kubevirt.vm_monitor_report: the report's files in one task, byte for byte what the role's copy and
template tasks wrote (issue 19: those cost seconds per MiB), atomic, changed only on new content, nothing
written in check mode, a small result."""
import json
import os
import stat
from pathlib import Path
from unittest import mock

import pytest
from ansible.errors import AnsibleActionFail
from ansible.parsing.dataloader import DataLoader
from ansible.playbook.play_context import PlayContext
from ansible.playbook.task import Task
from ansible.plugins.filter.core import to_nice_json
from ansible.template import Templar, trust_as_template

from ansible_collections.virtops.kubevirt.plugins.action.vm_monitor_report import ActionModule
from ansible_collections.virtops.kubevirt.plugins.plugin_utils import report_files

from filter.test_report_templates import TEMPLATES, sample_report


def make_action(args, check_mode=False, diff=False):
    task = Task()
    task.args = dict(args)
    task.check_mode = check_mode
    task.diff = diff
    task.action = task._resolved_action = "virtops.kubevirt.vm_monitor_report"
    action = ActionModule(task, mock.MagicMock(), PlayContext(), loader=DataLoader(), templar=mock.MagicMock(),
                          shared_loader_obj=None)
    action._find_needle = find_in_role_templates
    return action


def find_in_role_templates(dirname, name):
    """The role's templates/ is where the template action would look first for a role task."""
    path = Path(TEMPLATES) / name
    if dirname != "templates" or not path.exists():
        raise FileNotFoundError("Could not find or access '%s'" % name)
    return str(path)


def ansible_template(name, report):
    """What the template module's action renders (its defaults: trim_blocks, trailing newlines kept)."""
    source = (Path(TEMPLATES) / name).read_text()
    templar = Templar(loader=DataLoader(), variables={"report": report})
    return templar.template(trust_as_template(source), escape_backslashes=False,
                            overrides=dict(trim_blocks=True, lstrip_blocks=False, newline_sequence="\n"))


@pytest.fixture(scope="module")
def report():
    return sample_report()


def test_files_are_what_the_copy_and_template_tasks_wrote(report):
    texts = report_files.render(report, ["json", "markdown", "html"],
                                {"markdown": (Path(TEMPLATES) / "report.md.j2").read_text(),
                                 "html": (Path(TEMPLATES) / "report.html.j2").read_text()})
    assert texts["json"] == to_nice_json(report, indent=2) + "\n"
    assert texts["markdown"] == ansible_template("report.md.j2", report)
    assert texts["html"] == ansible_template("report.html.j2", report)
    assert "fleet/gone" in texts["markdown"] and "&lt;script&gt;" in texts["html"]


def test_a_template_may_use_ansible_builtin_filters(report):
    text = report_files.render_template("{{ report.totals | ansible.builtin.to_json }} {{ 'a' | b64encode }}\n",
                                        report)
    encoded, b64 = text.rsplit(" ", 1)
    assert json.loads(encoded) == report["totals"] and b64 == "YQ==\n"


def test_writes_then_changes_nothing_and_returns_only_paths(tmp_path, report):
    out = tmp_path / "reports" / "sub"
    result = make_action({"report": report, "dir": str(out)}).run(task_vars={})
    assert result["changed"] and result["changed_formats"] == ["json", "markdown", "html"]
    assert result["files"] == {"json": str(out / "vm-health.json"), "markdown": str(out / "vm-health.md"),
                               "html": str(out / "vm-health.html")}
    assert json.loads(Path(result["files"]["json"]).read_text()) == report
    assert stat.S_IMODE(os.stat(result["files"]["html"]).st_mode) == 0o644
    assert len(json.dumps(result)) < 1000 and result["totals"] == report["totals"]
    assert sorted(os.listdir(out)) == ["vm-health.html", "vm-health.json", "vm-health.md"]  # no temporary left

    again = make_action({"report": report, "dir": str(out)}).run(task_vars={})
    assert not again["changed"] and again["changed_formats"] == []


def test_only_the_file_whose_content_changed_is_written(tmp_path, report):
    make_action({"report": report, "dir": str(tmp_path), "formats": ["json", "html"]}).run(task_vars={})
    html_inode = os.stat(tmp_path / "vm-health.html").st_ino
    (tmp_path / "vm-health.json").write_text("{}\n")
    result = make_action({"report": report, "dir": str(tmp_path), "formats": ["json", "html"]}).run(task_vars={})
    assert result["changed_formats"] == ["json"] and os.stat(tmp_path / "vm-health.html").st_ino == html_inode
    assert not (tmp_path / "vm-health.md").exists()


def test_check_mode_writes_nothing_and_diff_shows_small_files(tmp_path):
    small = {"totals": {"vms": 0}, "vms": []}
    out = tmp_path / "new"
    result = make_action({"report": small, "dir": str(out), "formats": ["json"]}, check_mode=True,
                         diff=True).run(task_vars={})
    assert result["changed"] and not out.exists()
    assert result["diff"] == [{"before_header": str(out / "vm-health.json"),
                               "after_header": str(out / "vm-health.json"),
                               "before": "", "after": to_nice_json(small, indent=2) + "\n"}]


def test_diff_of_a_big_file_is_its_size(tmp_path, report, monkeypatch):
    monkeypatch.setattr("ansible.constants.MAX_FILE_SIZE_FOR_DIFF", 100)
    result = make_action({"report": report, "dir": str(tmp_path), "formats": ["json"]}, diff=True).run(task_vars={})
    assert result["diff"][0]["before"] == "" and result["diff"][0]["after"].endswith(" characters)\n")


@pytest.mark.parametrize("args, message", [
    ({"formats": ["pdf"]}, "formats"),
    ({"name": "../x"}, "name must be a file name"),
    ({"mode": "rw"}, "mode must be an octal file mode"),
    ({"html_template": "nowhere.j2"}, "html_template nowhere.j2 was not found"),
    ({"color": "red"}, "color"),
])
def test_bad_input_is_one_sentence_and_writes_nothing(tmp_path, report, args, message):
    with pytest.raises(AnsibleActionFail) as failure:
        make_action(dict({"report": report, "dir": str(tmp_path / "r")}, **args)).run(task_vars={})
    assert message in str(failure.value) and not (tmp_path / "r").exists()


def test_a_template_error_is_a_sentence(tmp_path, report):
    (tmp_path / "t").mkdir()
    bad = tmp_path / "t" / "bad.j2"
    bad.write_text("{{ report.nothing.here }}")
    action = make_action({"report": report, "dir": str(tmp_path / "r"), "formats": ["markdown"],
                          "markdown_template": "bad.j2"})
    action._find_needle = lambda dirname, name: str(bad)
    with pytest.raises(AnsibleActionFail, match="could not be rendered"):
        action.run(task_vars={})
    assert not (tmp_path / "r").exists()
