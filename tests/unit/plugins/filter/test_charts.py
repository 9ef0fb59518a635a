"""plugins/filter/charts.py: inline SVG sparklines, bars and gauges."""
import xml.etree.ElementTree as ET

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.virtops.kubevirt.plugins.filter import charts

SVG = "{http://www.w3.org/2000/svg}"


def parse(svg):
    root = ET.fromstring(svg)
    assert root.tag == SVG + "svg"
    return root


@pytest.mark.parametrize("series", [
    [1, 2, 3, 2],
    [[100, 1.0], [115, 2.5], [130, "3"]],
    {"values": [[0, 5], [1, 6]]},
])
def test_sparkline_shapes(series):
    root = parse(charts.svg_sparkline(series, width=100, height=20))
    assert root.get("width") == "100" and root.get("height") == "20"
    line = root.find(SVG + "polyline")
    points = [tuple(map(float, p.split(","))) for p in line.get("points").split()]
    assert len(points) == len(series["values"] if isinstance(series, dict) else series)
    assert all(0 <= x <= 100 and 0 <= y <= 20 for x, y in points)
    # x grows with time, the highest value is drawn highest (smallest y)
    assert [p[0] for p in points] == sorted(p[0] for p in points)


def test_sparkline_highest_value_on_top():
    root = parse(charts.svg_sparkline([0, 10, 5], width=100, height=40))
    ys = [float(p.split(",")[1]) for p in root.find(SVG + "polyline").get("points").split()]
    assert ys[1] == min(ys) and ys[0] == max(ys)


def test_sparkline_empty_and_single_point():
    empty = charts.svg_sparkline([])
    assert "no data" in empty
    parse(empty)
    single = parse(charts.svg_sparkline([[1, 3]], width=50))
    assert len(single.find(SVG + "polyline").get("points").split()) == 2  # a flat line across


def test_sparkline_skips_nan_and_draws_limit():
    root = parse(charts.svg_sparkline([[0, 1], [1, "NaN"], [2, 3]], limit=90, unit="%", title="cpu <&>"))
    assert len(root.find(SVG + "polyline").get("points").split()) == 2
    assert root.find(SVG + "line") is not None  # the limit
    assert root.find(SVG + "title").text == "cpu <&>"  # escaped in the source, parsed back


def test_sparkline_rejects_garbage():
    with pytest.raises(AnsibleFilterError, match="expected a number"):
        charts.svg_sparkline(["abc"])
    with pytest.raises(AnsibleFilterError, match=r"\[time, value\]"):
        charts.svg_sparkline([[1, 2, 3]])
    with pytest.raises(AnsibleFilterError, match="expected a list"):
        charts.svg_sparkline(42)


def test_bars():
    root = parse(charts.svg_bars({"Running": 3, "ErrImagePull": 1, "Paused": 0},
                                 colors={"Running": "ok", "*": "critical"}))
    rects = root.findall(SVG + "rect")
    palette = charts.PALETTE
    assert [r.get("fill") for r in rects] == [palette["ok"], palette["critical"], palette["critical"]]
    widths = [float(r.get("width")) for r in rects]
    assert widths[0] > widths[1] > widths[2] == 0
    texts = [t.text for t in root.findall(SVG + "text")]
    assert "ErrImagePull" in texts and "3" in texts
    with pytest.raises(AnsibleFilterError):
        charts.svg_bars("nope")


def test_bars_escape_labels():
    svg = charts.svg_bars([["<b>x</b>", 1]])
    assert "<b>" not in svg
    parse(svg)


@pytest.mark.parametrize("value,limit,color", [
    (10, 90, "ok"), (80, 90, "warning"), (95, 90, "critical"), (50, None, "ok"),
])
def test_gauge_colours(value, limit, color):
    root = parse(charts.svg_gauge(value, limit))
    assert root.findall(SVG + "rect")[1].get("fill") == charts.PALETTE[color]


def test_gauge_without_value():
    parse(charts.svg_gauge(None))


@pytest.mark.parametrize("value,unit,text", [
    (None, "", "-"), (0.0421, "", "0.042"), (12.34, "%", "12.3 %"), (1536, "B", "1.5 KiB"),
    (5 * 2 ** 30, "B", "5.0 GiB"), (2500, "", "2.5 k"), (512, "B/s", "512 B/s"), (3, "cores", "3 cores"),
])
def test_human_number(value, unit, text):
    assert charts.human_number(value, unit) == text


def test_filter_names():
    assert set(charts.FilterModule().filters()) == {"svg_sparkline", "svg_bars", "svg_gauge", "human_number"}
