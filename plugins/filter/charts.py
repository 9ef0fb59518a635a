# -*- coding: utf-8 -*-
# Copyright: virtops.kubevirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Small inline SVG charts for self-contained HTML reports (no scripts, no external files)."""

from __future__ import annotations

import math
from html import escape

from ansible.errors import AnsibleFilterError

PALETTE = {
    "ok": "#2e7d32",
    "warning": "#ef6c00",
    "critical": "#c62828",
    "info": "#1565c0",
    "muted": "#9e9e9e",
}


def _num(value, what):
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise AnsibleFilterError("%s: expected a number, got %r" % (what, value))
    if math.isnan(number) or math.isinf(number):
        return None
    return number


def _points(series):
    """[[t, v], ...] or [v, ...] or {'values': [[t, v], ...]} -> [(x, y)] without NaN/inf."""
    if isinstance(series, dict):
        series = series.get("values") or series.get("series") or []
    if series is None:
        return []
    if not isinstance(series, (list, tuple)):
        raise AnsibleFilterError("svg_sparkline: expected a list of values or [time, value] pairs, got %r"
                                 % type(series).__name__)
    out = []
    for index, item in enumerate(series):
        if isinstance(item, (list, tuple)):
            if len(item) != 2:
                raise AnsibleFilterError("svg_sparkline: a point must be [time, value], got %r" % (item,))
            x, y = _num(item[0], "svg_sparkline time"), _num(item[1], "svg_sparkline value")
        else:
            x, y = float(index), _num(item, "svg_sparkline value")
        if x is not None and y is not None:
            out.append((x, y))
    return out


def human_number(value, unit=""):
    """1234567 -> '1.2 M', with a unit: 'B' -> '1.2 MiB' (binary), '%' -> '12.3 %'."""
    if value is None:
        return "-"
    value = float(value)
    if unit == "%":
        return "%.1f %%" % value
    if unit in ("B", "B/s"):
        step, prefixes = 1024.0, ["", "Ki", "Mi", "Gi", "Ti", "Pi"]
    else:
        step, prefixes = 1000.0, ["", "k", "M", "G", "T", "P"]
    index = 0
    while abs(value) >= step and index < len(prefixes) - 1:
        value /= step
        index += 1
    if index == 0 and unit not in ("B", "B/s"):
        text = ("%.3f" % value).rstrip("0").rstrip(".") if abs(value) < 10 else "%.1f" % value
    else:
        text = "%.1f" % value if index else "%d" % round(value)
    suffix = (prefixes[index] + unit).strip()
    return ("%s %s" % (text, suffix)).strip()


def svg_sparkline(series, width=180, height=40, color=None, unit="", limit=None, title=None, ymin=0, ymax=None):
    """A sparkline: line plus filled area, an optional dashed limit line, last value as text.

    ``series`` is a list of values or of [unix_time, value] pairs (Prometheus' query_range shape).
    Returns an ``<svg>`` element as a string; an empty series gives a small "no data" box.
    """
    width, height = int(width), int(height)
    color = color or PALETTE["info"]
    points = _points(series)
    label = escape(str(title)) if title else ""
    head = ('<svg xmlns="http://www.w3.org/2000/svg" class="spark" width="%d" height="%d" viewBox="0 0 %d %d" '
            'role="img"%s>' % (width, height, width, height, ' aria-label="%s"' % label if label else ""))
    if label:
        head += "<title>%s</title>" % label
    if not points:
        return (head + '<rect x="0.5" y="0.5" width="%d" height="%d" fill="none" stroke="%s" stroke-dasharray="3 3"/>'
                '<text x="%d" y="%d" font-size="10" text-anchor="middle" fill="%s">no data</text></svg>'
                % (width - 1, height - 1, PALETTE["muted"], width // 2, height // 2 + 4, PALETTE["muted"]))
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    lo = min(ys) if ymin is None else min([float(ymin)] + ys)
    hi = max(ys)
    if ymax is not None:
        hi = max(hi, float(ymax))
    if limit is not None:
        hi = max(hi, float(limit))
    if hi == lo:
        hi = lo + 1.0
    x0, x1 = min(xs), max(xs)
    span = (x1 - x0) or 1.0
    pad, text_w = 2.0, 0.0
    plot_h = height - 2 * pad

    def sx(x):
        return pad + (x - x0) / span * (width - 2 * pad - text_w) if len(points) > 1 else width / 2.0

    def sy(y):
        return pad + plot_h - (y - lo) / (hi - lo) * plot_h

    coords = ["%.1f,%.1f" % (sx(x), sy(y)) for x, y in points]
    if len(coords) == 1:
        coords = ["%.1f,%.1f" % (pad, sy(ys[0])), "%.1f,%.1f" % (width - pad, sy(ys[0]))]
    first_x, last_x = coords[0].split(",")[0], coords[-1].split(",")[0]
    area = "M%s,%.1f L%s L%s,%.1f Z" % (first_x, pad + plot_h, " L".join(coords), last_x, pad + plot_h)
    body = ['<path d="%s" fill="%s" fill-opacity="0.15" stroke="none"/>' % (area, color),
            '<polyline points="%s" fill="none" stroke="%s" stroke-width="1.5" stroke-linejoin="round"/>'
            % (" ".join(coords), color)]
    if limit is not None:
        ly = sy(float(limit))
        body.append('<line x1="0" x2="%d" y1="%.1f" y2="%.1f" stroke="%s" stroke-width="1" stroke-dasharray="4 3">'
                    '<title>limit %s</title></line>' % (width, ly, ly, PALETTE["critical"],
                                                        escape(human_number(limit, unit))))
    last = ys[-1]
    body.append('<circle cx="%s" cy="%.1f" r="2" fill="%s"><title>last %s, max %s</title></circle>'
                % (last_x, sy(last), color, escape(human_number(last, unit)), escape(human_number(max(ys), unit))))
    return head + "".join(body) + "</svg>"


def svg_bars(counts, width=320, bar_height=16, colors=None, title=None):
    """Horizontal bars from {label: count} (or a list of [label, count]); each bar says its count.

    ``colors`` maps labels to CSS colours (severity names of the palette work too).
    """
    if isinstance(counts, dict):
        items = list(counts.items())
    elif isinstance(counts, (list, tuple)):
        items = [tuple(i) for i in counts]
    else:
        raise AnsibleFilterError("svg_bars: expected a dict of {label: count}, got %r" % type(counts).__name__)
    colors = colors or {}
    width, bar_height = int(width), int(bar_height)
    gap, label_w = 4, 130
    height = max(1, len(items)) * (bar_height + gap) + gap
    top = max([_num(item[1], "svg_bars count") or 0 for item in items] or [0]) or 1
    label = escape(str(title)) if title else ""
    out = ['<svg xmlns="http://www.w3.org/2000/svg" class="bars" width="%d" height="%d" viewBox="0 0 %d %d" role="img"%s>'
           % (width, height, width, height, ' aria-label="%s"' % label if label else "")]
    if label:
        out.append("<title>%s</title>" % label)
    for index, (name, count) in enumerate(items):
        count = _num(count, "svg_bars count") or 0
        y = gap + index * (bar_height + gap)
        bar_w = max(1.0, (width - label_w - 40) * count / top) if count else 0
        fill = colors.get(name) or PALETTE.get(colors.get("*", ""), None) or PALETTE["info"]
        fill = PALETTE.get(fill, fill)
        out.append('<text x="%d" y="%d" font-size="11" text-anchor="end" fill="#333">%s</text>'
                   % (label_w - 6, y + bar_height - 4, escape(str(name))))
        out.append('<rect x="%d" y="%d" width="%.1f" height="%d" rx="2" fill="%s"/>'
                   % (label_w, y, bar_w, bar_height, escape(fill)))
        out.append('<text x="%.1f" y="%d" font-size="11" fill="#333">%s</text>'
                   % (label_w + bar_w + 4, y + bar_height - 4, "%g" % count))
    out.append("</svg>")
    return "".join(out)


def svg_gauge(value, limit=None, width=120, height=12, unit="%", maximum=100.0):
    """A thin horizontal gauge (0..maximum) coloured by ``limit``: green, orange near it, red above."""
    width, height = int(width), int(height)
    maximum = float(maximum) or 100.0
    if value is None:
        return ('<svg xmlns="http://www.w3.org/2000/svg" class="gauge" width="%d" height="%d"><rect width="%d" '
                'height="%d" fill="#eee"/></svg>' % (width, height, width, height))
    value = _num(value, "svg_gauge value") or 0.0
    ratio = max(0.0, min(1.0, value / maximum))
    color = PALETTE["ok"]
    if limit is not None:
        if value > float(limit):
            color = PALETTE["critical"]
        elif value > 0.8 * float(limit):
            color = PALETTE["warning"]
    text = escape(human_number(value, unit))
    parts = ['<svg xmlns="http://www.w3.org/2000/svg" class="gauge" width="%d" height="%d" role="img" aria-label="%s">'
             % (width, height, text),
             "<title>%s</title>" % text,
             '<rect width="%d" height="%d" rx="2" fill="#eee"/>' % (width, height),
             '<rect width="%.1f" height="%d" rx="2" fill="%s"/>' % (width * ratio, height, color)]
    if limit is not None:
        lx = width * max(0.0, min(1.0, float(limit) / maximum))
        parts.append('<line x1="%.1f" x2="%.1f" y1="0" y2="%d" stroke="#333" stroke-width="1"/>' % (lx, lx, height))
    parts.append("</svg>")
    return "".join(parts)


class FilterModule(object):
    def filters(self):
        return {
            "svg_sparkline": svg_sparkline,
            "svg_bars": svg_bars,
            "svg_gauge": svg_gauge,
            "human_number": human_number,
        }
