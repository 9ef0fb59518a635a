"""The vm_monitor report templates rendered with the collection's filters, and the HTML page in headless Chromium.

The templates are rendered with plain Jinja2 and the filters registered under their FQCNs, as Ansible does;
the Chromium test is skipped where no chromium binary is installed (Debian: apt-get install chromium).
"""
import json
import os
import shutil
import struct
import subprocess
import tempfile
import zlib
from html.parser import HTMLParser

import jinja2
import pytest

from ansible_collections.virtops.kubevirt.plugins.filter import charts, health, monitor, provision

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
TEMPLATES = os.path.join(REPO, "roles", "vm_monitor", "templates")
SECRET = "Pa55-w0rd-never-shown"


def environment():
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), undefined=jinja2.StrictUndefined,
                             trim_blocks=True)
    for module in (charts, health, monitor, provision):
        for name, func in module.FilterModule().filters().items():
            env.filters["virtops.kubevirt." + name] = func
    return env


def series(start, values):
    return [[start + 15 * i, v] for i, v in enumerate(values)]


def sample_report():
    """A fleet: one healthy VM with metrics, one ErrImagePull, one paused, one missing; a hostile reason."""
    def s(name, status, ready, reason, **extra):
        out = {"name": name, "namespace": "fleet", "status": status, "ready": ready, "reason": reason,
               "run_strategy": "Always", "created": True, "agent_connected": ready, "node": "lab-worker-1",
               "ip_addresses": ["10.128.0.%d" % len(name)], "networks": {}, "conditions_not_ok": [],
               "warning_events": [], "guest_os": {"pretty_name": "Fedora Linux 41"} if ready else None,
               "launcher_pod": {"name": "virt-launcher-%s-abcde" % name, "phase": "Running", "waiting": None},
               "paused": status == "Paused", "phase": "Running", "ip_address": None, "restart_required": False}
        out.update(extra)
        return out
    summaries = [
        s("web-1", "Running", True, None),
        s("broken", "ErrImagePull", False,
          "ErrImagePull: cannot pull the container disk image 'quay.io/containerdisks/does-not-exist:1' (not found)",
          conditions_not_ok=[{"type": "Synchronized", "status": "False", "reason": "ErrImagePull",
                              "message": "rpc error: not found"}],
          warning_events=[{"reason": "Failed", "message": "Failed to pull image <does-not-exist>",
                           "object": "Pod/virt-launcher-broken-x", "count": 4, "last_seen": "2026-01-01T00:00:00Z"}],
          launcher_pod={"name": "virt-launcher-broken-x", "phase": "Pending",
                        "waiting": {"reason": "ErrImagePull", "message": "not found"}}),
        s("paused-1", "Paused", True, "Paused: VMI was paused by user"),
        s("hostile", "Starting", False, "Starting: <script>alert(1)</script> & more"),
    ]
    resources = [{"metadata": {"namespace": "fleet", "name": x["name"]},
                  "spec": {"template": {"spec": {"domain": {"cpu": {"cores": 2}, "memory": {"guest": "2Gi"}},
                                                 "volumes": [{"name": "ci", "cloudInitNoCloud": {
                                                     "userData": "#cloud-config\npassword: %s\n" % SECRET}}]}}}}
                 for x in summaries]
    results = [
        {"item": {"key": "cpu_cores", "value": {"unit": "cores"}}, "status": 200,
         "json": {"status": "success", "data": {"result": [{"metric": {"namespace": "fleet", "name": "web-1"},
                                                            "values": series(1000, [0.2, 0.5, 1.9, 1.2, 0.4])}]}}},
        {"item": {"key": "memory_percent", "value": {"unit": "%"}}, "status": 200,
         "json": {"status": "success", "data": {"result": [{"metric": {"namespace": "fleet", "name": "web-1"},
                                                            "values": series(1000, [40, 42, 45, 44, 43])}]}}},
        {"item": {"key": "network_receive_bps", "value": {"unit": "B/s"}}, "status": 503,
         "json": {"status": "error", "error": "queries are unavailable"}},
    ]
    metrics = monitor.vm_metrics(results, resources)
    verdicts = health.vm_health(summaries, {}, metrics, resources)
    context = {"title": "Fleet health", "generated_at": "2026-01-01T00:00:00Z",
               "scope": {"namespace": "fleet", "names": [], "label_selectors": ["app=fleet"]},
               "prometheus": "http://prometheus:9090", "metrics_window": "1h", "rules": {}}
    return monitor.vm_monitor_report(summaries, verdicts, metrics, resources, context, ["fleet/gone"])


class Collector(HTMLParser):
    VOID = {"meta", "br", "img", "input", "link", "hr", "circle", "line", "rect", "path", "polyline"}

    def __init__(self):
        super().__init__()
        self.stack, self.errors, self.tags, self.text = [], [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags.append(tag)

    def handle_endtag(self, tag):
        if tag in self.VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append("unexpected </%s> (open: %s)" % (tag, self.stack[-3:]))
            return
        self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


@pytest.fixture(scope="module")
def rendered():
    report = sample_report()
    env = environment()
    return (report, env.get_template("report.html.j2").render(report=report),
            env.get_template("report.md.j2").render(report=report))


def test_html_is_well_formed_and_self_contained(rendered):
    _report, html, _md = rendered
    parser = Collector()
    parser.feed(html)
    assert not parser.errors and parser.stack == []
    assert "script" not in parser.tags and "link" not in parser.tags and "img" not in parser.tags
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "").replace("http://prometheus:9090", "")
    assert parser.tags.count("svg") >= 4  # bars, sparklines


def test_html_names_the_unhealthy_vms_with_reasons_and_escapes(rendered):
    _report, html, _md = rendered
    assert "does-not-exist" in html and "Paused: VMI was paused by user" in html and "fleet/gone" in html
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "network_receive_bps: HTTP 503: queries are unavailable" in html
    assert SECRET not in html


def test_markdown(rendered):
    _report, _html, md = rendered
    assert md.startswith("# Fleet health")
    assert "| CRITICAL | fleet/broken | ErrImagePull | ErrImagePull: cannot pull" in md
    assert "| CRITICAL | fleet/paused-1 | Paused | Paused: VMI was paused by user |" in md
    assert "### fleet/gone: NotFound" in md
    assert SECRET not in md
    header = [line for line in md.splitlines() if line.startswith("| Health")][0]
    for line in md.splitlines():
        if line.startswith("| CRITICAL") or line.startswith("| OK") or line.startswith("| WARNING"):
            assert line.count(" | ") == header.count(" | "), line


def png_size(path):
    with open(path, "rb") as handle:
        data = handle.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return data, width, height


def png_distinct_colours(data):
    """Distinct colours of the first rows of an 8-bit RGB(A) non-interlaced PNG (enough to tell blank from drawn)."""
    pos, idat, header = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    width, _height, depth, colour, _c, _f, interlace = header
    if depth != 8 or colour not in (2, 6) or interlace:
        return None
    channels = 3 if colour == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * channels
    colours, prev, offset = set(), bytearray(stride), 0
    for _row in range(min(400, len(raw) // (stride + 1))):
        ftype, line = raw[offset], bytearray(raw[offset + 1:offset + 1 + stride])
        offset += stride + 1
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b = prev[i]
            c = prev[i - channels] if i >= channels else 0
            if ftype == 1:
                line[i] = (line[i] + a) & 255
            elif ftype == 2:
                line[i] = (line[i] + b) & 255
            elif ftype == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif ftype == 4:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        for i in range(0, stride, channels * 7):
            colours.add(bytes(line[i:i + 3]))
        prev = line
    return colours


def chromium():
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def screenshot(html_path, png_path, width=1400, height=1000):
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                        "--disable-component-update", "--disable-sync", "--no-first-run",
                        "--user-data-dir=%s" % profile, "--window-size=%d,%d" % (width, height),
                        "--screenshot=%s" % png_path, "file://%s" % html_path],
                       check=True, capture_output=True, timeout=120)


def test_html_renders_in_headless_chromium(rendered, tmp_path):
    # make test installs it (make debs); a missing browser is a failure, not a skip
    assert chromium(), "chromium is not installed: make debs (apt-get install chromium)"
    _report, html, _md = rendered
    page = tmp_path / "report.html"
    page.write_text(html, encoding="utf-8")
    png = tmp_path / "report.png"
    screenshot(str(page), str(png))
    data, width, height = png_size(str(png))
    assert (width, height) == (1400, 1000)
    assert len(data) > 20000, "the screenshot is suspiciously small (%d bytes): a blank page?" % len(data)
    colours = png_distinct_colours(data)
    if colours is not None:
        assert len(colours) > 20, "the screenshot has only %d colours: a blank page?" % len(colours)
    keep = os.environ.get("VM_MONITOR_SCREENSHOT")
    if keep:
        shutil.copy(str(png), keep)
        json.dump(_report, open(keep + ".json", "w"), indent=2)
