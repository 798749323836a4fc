"""The comparison table of all jobs on one content video: their metrics side by side, and as ratios to the
baselines (per-frame stylization, and that through ffmpeg's deflicker), in Markdown and HTML.

A ratio is the job's value over the baseline's: below 1 is better for warping error, flicker and the
distances, above 1 is better for SSIM; for seconds per frame it is the cost of the job against the baseline's.
"""
from __future__ import annotations

import html
import json
import math
from pathlib import Path

from artify.video import atomic_write_text

# (key in metrics.json, column title, "lower"/"higher" is better)
COLUMNS = [
    ("warp_error.short", "warping error (1 frame)", "lower"),
    ("warp_error.long", "warping error (10 frames)", "lower"),
    ("flicker", "flicker", "lower"),
    ("style_distance", "style distance", "lower"),
    ("content_distance", "content distance", "lower"),
    ("ssim", "SSIM", "higher"),
    ("seconds_per_frame", "s / frame", "lower"),
    ("peak_memory_mb", "peak MB", "lower"),
]
# the input's own values: the floor a perfectly stable output reaches, and where the style had to start
_INPUT = {"warp_error.short": "warp_error_input.short", "warp_error.long": "warp_error_input.long",
          "flicker": "flicker_input", "style_distance": "style_distance_input"}
KINDS = ("result", "per-frame", "deflicker")


def value(metrics: dict, key: str):
    v = metrics
    for part in key.split("."):
        v = v.get(part) if isinstance(v, dict) else None
    return v if isinstance(v, (int, float)) and not (isinstance(v, float) and math.isnan(v)) else None


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def _fmt(v, digits=4) -> str:
    if v is None:
        return "–"
    if isinstance(v, int) or abs(v) >= 100:
        return f"{v:.0f}"
    return f"{v:.{digits}g}"


def comparison(entries: list[dict]) -> dict:
    """Rows and ratios from `entries`, each {"job", "kind" (result | per-frame | deflicker), "metrics" (dict
    or path of metrics.json), optional "perframe"/"deflicker" (the job names of its own baselines),
    "settings" (a short description)}.

    A result's baselines are its own when given, else the first of each kind in the table. Returns
    {"rows": [{job, kind, settings, values{key: v}}], "input": {key: v}, "ratios": [{job, baseline,
    baseline_kind, values{key: ratio}}]}.
    """
    rows = []
    for e in entries:
        if e["kind"] not in KINDS:
            raise ValueError(f"job {e['job']}: kind {e['kind']!r} is not one of {KINDS}")
        m = e["metrics"]
        if not isinstance(m, dict):
            m = json.loads(Path(m).read_text())
        rows.append({"job": e["job"], "kind": e["kind"], "settings": e.get("settings", ""),
                     "perframe": e.get("perframe"), "deflicker": e.get("deflicker"), "metrics": m,
                     "values": {k: value(m, k) for k, _, _ in COLUMNS}})
    if not rows:
        raise ValueError("nothing to compare")
    by_job = {r["job"]: r for r in rows}
    first = {kind: next((r for r in rows if r["kind"] == kind), None) for kind in KINDS}
    ref = rows[0]["metrics"]
    inp = {k: value(ref, _INPUT[k]) if k in _INPUT else None for k, _, _ in COLUMNS}
    inp["content_distance"], inp["ssim"] = 0.0, 1.0
    ratios = []
    for r in rows:
        if r["kind"] != "result":
            continue
        for kind, own in (("per-frame", r["perframe"]), ("deflicker", r["deflicker"])):
            base = by_job.get(own) if own else first[kind]
            if base is None:
                continue
            ratios.append({"job": r["job"], "baseline": base["job"], "baseline_kind": kind,
                           "values": {k: ratio(r["values"][k], base["values"][k]) for k, _, _ in COLUMNS}})
    return {"rows": rows, "input": inp, "ratios": ratios}


def _tables(c: dict):
    head = ["job", "kind", "settings"] + [title for _, title, _ in COLUMNS]
    body = [[r["job"], r["kind"], r["settings"]] + [_fmt(r["values"][k]) for k, _, _ in COLUMNS] for r in c["rows"]]
    body.append(["input", "floor", "the content itself"] + [_fmt(c["input"][k]) for k, _, _ in COLUMNS])
    rhead = ["job", "against", "baseline"] + [f"{title} ×" for _, title, _ in COLUMNS]
    rbody = [[r["job"], r["baseline"], r["baseline_kind"]] + [_fmt(r["values"][k], 3) for k, _, _ in COLUMNS]
             for r in c["ratios"]]
    return (head, body), (rhead, rbody)


_NOTE = ("Ratios are the job's value over the baseline's: below 1 is better for warping error, flicker and the "
         "distances, above 1 for SSIM; s / frame and peak MB are costs. Warping error follows Lai et al. 2018 "
         "(input flow, occlusion and motion-boundary mask, RGB in [0, 1]); the input row is its floor.")


def to_markdown(c: dict, title: str) -> str:
    def table(head, body):
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(str(x).replace("|", "\\|") for x in row) + " |" for row in body]
        return "\n".join(lines)

    (h, b), (rh, rb) = _tables(c)
    parts = [f"# {title}", "", "## Metrics", "", table(h, b), ""]
    parts += ["## Ratios to the baselines", "", table(rh, rb) if rb else "No baselines in this comparison "
              "(set `baselines: true` for a job to add them).", "", _NOTE, ""]
    return "\n".join(parts)


def to_html(c: dict, title: str) -> str:
    def table(head, body):
        th = "".join(f"<th>{html.escape(str(x))}</th>" for x in head)
        trs = "".join("<tr>" + "".join(f"<td>{html.escape(str(x))}</td>" for x in row) + "</tr>" for row in body)
        return f"<table><thead><tr>{th}</tr></thead><tbody>{trs}</tbody></table>"

    (h, b), (rh, rb) = _tables(c)
    style = ("body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse;margin:1em 0}"
             "th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}th{background:#eee}"
             "td:nth-child(-n+3){text-align:left}")
    ratios = table(rh, rb) if rb else "<p>No baselines in this comparison (set <code>baselines: true</code>).</p>"
    return (f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body><h1>{html.escape(title)}</h1><h2>Metrics</h2>{table(h, b)}"
            f"<h2>Ratios to the baselines</h2>{ratios}<p>{html.escape(_NOTE)}</p></body></html>\n")


def compare(entries: list[dict], out_md, out_html, title: str = "Comparison") -> dict:
    """Write the comparison of `entries` (see `comparison`) as Markdown and HTML; returns it."""
    c = comparison(entries)
    atomic_write_text(out_md, to_markdown(c, title))
    atomic_write_text(out_html, to_html(c, title))
    return c
