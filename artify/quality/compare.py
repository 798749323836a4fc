"""The comparison of all jobs on one content video, as Markdown and as one HTML page for people.

The page shows what the numbers measure: the same frames of the input and of every job as thumbnails in one
grid (evenly spaced ones and the frame of worst warping error), each job's side-by-side video and per-frame
plot, then the numbers, each to 3 significant digits: the distances relative to the input's own, the ratios
to the baselines (per-frame stylization, and that through ffmpeg's deflicker), and the raw values. When
viewers have filled in the blind A/B page (`artify.quality.assess`), their tally (win rates with 95 % intervals)
joins it. Pictures are inlined; the videos are linked by their path relative to the page, so the page opens
from disk with no server as long as the results folder stays together.

A ratio is the job's value over the baseline's (or the input's): below 1 is better for warping error,
flicker and the distances, above 1 is better for SSIM; for seconds per frame it is the cost of the job
against the baseline's.
"""
from __future__ import annotations

import base64
import html
import json
import math
import os
from fractions import Fraction
from pathlib import Path
from urllib.parse import quote

from artify.atomic import atomic_write_text
from artify.media.video import MediaError, VideoMeta, probe, read_frames

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
DIGITS = 3


def value(metrics: dict, key: str):
    v = metrics
    for part in key.split("."):
        v = v.get(part) if isinstance(v, dict) else None
    return v if isinstance(v, (int, float)) and not (isinstance(v, float) and math.isnan(v)) else None


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def fmt(v, digits: int = DIGITS) -> str:
    """`v` to `digits` significant digits, readable: 0.00123, 0.250, 12.3, 1,230, 9.48 × 10⁹; None is a dash."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    if v == 0:
        return "0"
    exponent = math.floor(math.log10(abs(v)))
    if exponent >= 6 or exponent < -3:
        mantissa = round(v / 10 ** exponent, digits - 1)
        if abs(mantissa) >= 10:  # 9.996e9 rounds to 10.0e9
            mantissa, exponent = mantissa / 10, exponent + 1
        return f"{mantissa:.{digits - 1}f} × 10{str(exponent).translate(_SUPERSCRIPT)}"
    decimals = digits - 1 - exponent
    rounded = round(v, decimals)
    if rounded != 0 and math.floor(math.log10(abs(rounded))) > exponent:  # 0.9996 -> 1.00, one decimal fewer
        decimals -= 1
    return f"{rounded:,.{max(0, decimals)}f}"


def comparison_entries(members: list[str], jobs: dict[str, dict], baselines: dict[str, dict],
                       deflickered: dict[str, str]) -> list[dict]:
    """The `artify compare --entries` of one comparison (the workflow's rule compare): each member job, its
    kind (result, per-frame or deflicker baseline), the names of its own baselines, a short description of its
    settings (method, then the fields in which it differs from the first member's; a deflicker baseline adds
    its filter's), and the paths of its metrics.json and of its files for the page, under results/{job}/.

    members: the comparison's jobs, first the one the others are described against (`comparison_groups`);
    jobs: {job: settings}; baselines: {job: {"perframe": name, "deflicker": name}} and deflickered:
    {deflicker baseline: the per-frame job it filters}, as `add_baselines` returns them.
    """
    kinds = {b["perframe"]: "per-frame" for b in baselines.values()} | {d: "deflicker" for d in deflickered}
    first = jobs[deflickered.get(members[0], members[0])]
    entries = []
    for job in members:
        settings = jobs[deflickered.get(job, job)]  # a deflicker baseline is described by the job it filters
        differ = [f"{k}={v}" for k, v in settings.items()
                  if k not in ("job", "content", "style", "baselines", "jobs") and first[k] != v]
        described = settings["method"] + (f"; {', '.join(differ)}" if differ else "")
        if job in deflickered:
            described += f"; deflicker size={settings['deflicker_size']} mode={settings['deflicker_mode']}"
        entries.append({"job": job, "kind": kinds.get(job, "result"), "path": f"results/{job}/metrics.json",
                        "settings": described, "video": f"results/{job}/stylized.mp4",
                        "per_frame": f"results/{job}/per-frame.tsv", "plot": f"results/{job}/per-frame.png",
                        "side_by_side": f"results/{job}/side_by_side.mp4", **baselines.get(job, {})})
    return entries


def comparison(entries: list[dict]) -> dict:
    """Rows and ratios from `entries`, each {"job", "kind" (result | per-frame | deflicker), "metrics" (dict
    or path of metrics.json), optional "perframe"/"deflicker" (the job names of its own baselines),
    "settings" (a short description)}.

    A result's baselines are its own when given, else the first of each kind in the table. Returns
    {"rows": [{job, kind, settings, values{key: v}, relative{key: v / input's}}], "input": {key: v},
    "ratios": [{job, baseline, baseline_kind, values{key: ratio}}]}.
    """
    rows = []
    for e in entries:
        if e["kind"] not in KINDS:
            raise ValueError(f"job {e['job']}: kind {e['kind']!r} is not one of {KINDS}")
        m = e["metrics"]
        if not isinstance(m, dict):
            m = json.loads(Path(m).read_text())
        values = {k: value(m, k) for k, _, _ in COLUMNS}
        relative = {k: ratio(values[k], value(m, _INPUT[k])) for k in _INPUT}
        rows.append({"job": e["job"], "kind": e["kind"], "settings": e.get("settings", ""),
                     "perframe": e.get("perframe"), "deflicker": e.get("deflicker"), "metrics": m,
                     "values": values, "relative": relative})
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


def _tables(c: dict) -> dict:
    """(head, body) of each table: "relative" (distances over the input's), "ratios" (over the baselines),
    "raw" (the values in metrics.json, with the input's row)."""
    rel_head = ["job", "kind", "settings"] + [f"{t} ×input" if k in _INPUT else t for k, t, _ in COLUMNS]

    def rel_cells(r):
        return [fmt(r["relative"][k]) if k in _INPUT else fmt(r["values"][k]) for k, _, _ in COLUMNS]

    rel_body = [[r["job"], r["kind"], r["settings"]] + rel_cells(r) for r in c["rows"]]
    rel_body.append(["input", "floor", "the content itself"] +
                    [fmt(1.0 if k in _INPUT and c["input"][k] else c["input"][k]) for k, _, _ in COLUMNS])
    raw_head = ["job", "kind", "settings"] + [title for _, title, _ in COLUMNS]
    raw_body = [[r["job"], r["kind"], r["settings"]] + [fmt(r["values"][k]) for k, _, _ in COLUMNS] for r in c["rows"]]
    raw_body.append(["input", "floor", "the content itself"] + [fmt(c["input"][k]) for k, _, _ in COLUMNS])
    ratio_head = ["job", "against", "baseline"] + [f"{title} ×" for _, title, _ in COLUMNS]
    ratio_body = [[r["job"], r["baseline"], r["baseline_kind"]] + [fmt(r["values"][k]) for k, _, _ in COLUMNS]
                  for r in c["ratios"]]
    return {"relative": (rel_head, rel_body), "ratios": (ratio_head, ratio_body), "raw": (raw_head, raw_body)}


_NOTE_RELATIVE = ("×input is the job's value over the input video's own: for warping error and flicker the input "
                  "is the floor (1 = as steady as the input itself); for style distance 1 is no nearer the style "
                  "than the input (lower is more stylized). Content distance is 0 and SSIM 1 for the input.")
_NOTE = ("Ratios are the job's value over the baseline's: below 1 is better for warping error, flicker and the "
         "distances, above 1 for SSIM; s / frame and peak MB are costs. Warping error follows Lai et al. 2018 "
         "(input flow, occlusion and motion-boundary mask, RGB in [0, 1]); the input row is its floor.")
_NO_BASELINES = "No baselines in this comparison (set `baselines: true` for a job to add them)."


def measurement_note(c: dict) -> str:
    """Where the figures were measured (metrics.json's `measured_on`): one sentence when every job was
    measured alike, one per job (and a warning) when not; empty for metrics written before it existed."""
    def said(m):
        on = m.get("measured_on")
        if not on:
            return None
        size, every, some = on["warp_error"]["size"], on["warp_error"], on["style_distance"]
        at = f"at {size[0]}×{size[1]}" if size else "at the output's size"
        sampled = ("every frame" if some["frames"] == some["of"] else
                   f"{some['frames']} evenly spaced frames of {some['of']}")
        return (f"measured {at}: warping error, flicker and SSIM on every frame ({every['of']}), style and "
                f"content distance on {sampled}")

    notes = {r["job"]: said(r["metrics"]) for r in c["rows"]}
    known = {n for n in notes.values() if n}
    if not known:
        return ""
    if len(known) == 1 and all(notes.values()):
        return f"Every job was {known.pop()}."
    return ("Jobs measured differently do not compare: " +
            "; ".join(f"{job} {note or 'measured before sizes were stated'}" for job, note in notes.items()) + ".")


def _tally_tables(tally: dict):
    """(question title, head, body) per question of a tally (`artify.quality.assess.tally`)."""
    out = []
    for q in tally["questions"]:
        head = ["job", "win rate", "95 % interval", "wins", "same", "losses", "comparisons"]
        body = [[j["job"], fmt(j["win_rate"]), f"{fmt(j['low'])} – {fmt(j['high'])}", j["wins"], j["ties"],
                 j["losses"], j["n"]] for j in q["jobs"]]
        out.append((q["title"], head, body))
    return out


def _tally_note(tally: dict) -> str:
    return (f"{tally['answers']} answers from {len(tally['sheets'])} filled-in sheet(s) ({tally['files']} file(s)). "
            "Win rate = (wins + half the 'same' answers) / comparisons of that job; the interval is Wilson's "
            "95 % score interval. Pairs were shown left/right in random order, with the job names hidden.")


def to_markdown(c: dict, title: str, tally: dict | None = None) -> str:
    def table(head, body):
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(str(x).replace("|", "\\|") for x in row) + " |" for row in body]
        return "\n".join(lines)

    t = _tables(c)
    parts = [f"# {title}", "", "## Metrics relative to the input", "", table(*t["relative"]), "", _NOTE_RELATIVE, ""]
    if measurement_note(c):
        parts += [measurement_note(c), ""]
    parts += ["## Ratios to the baselines", "", table(*t["ratios"]) if t["ratios"][1] else _NO_BASELINES, "",
              _NOTE, ""]
    if tally:
        parts += ["## Manual assessment (blind A/B)", ""]
        for question, head, body in _tally_tables(tally):
            parts += [f"### {question}", "", table(head, body), ""]
        parts += [_tally_note(tally), ""]
    parts += ["## Raw values", "", table(*t["raw"]), ""]
    return "\n".join(parts)


# ------------------------------------------------------------------------------------------------ pictures

def pick_frames(n: int, count: int, per_frame_tsvs: dict | None = None) -> list[dict]:
    """`count` evenly spaced frames of n (first and last included), and the frame of worst warping error
    (the largest `warp_error_short` of any job's per-frame table) when it is not among them.
    Returns [{"frame", "why"}] in frame order."""
    import numpy as np
    import pandas as pd

    picks = {int(f): "" for f in np.linspace(0, n - 1, min(count, n)).round().astype(int)}
    worst = None
    for job, tsv in (per_frame_tsvs or {}).items():
        errors = pd.read_csv(tsv, sep="\t").set_index("frame")["warp_error_short"].dropna()
        errors = errors[errors.index < n]
        if len(errors) and (worst is None or errors.max() > worst[2]):
            worst = (int(errors.idxmax()), job, float(errors.max()))
    if worst is not None:
        picks[worst[0]] = f"worst warping error ({worst[1]}: {fmt(worst[2])})"
    return [{"frame": f, "why": why} for f, why in sorted(picks.items())]


def thumbnail_size(width: int, height: int, thumb_width: int) -> tuple[int, int]:
    """At most thumb_width wide, keeping the aspect; even sides (what H.264 in yuv420p needs)."""
    scale = min(1.0, thumb_width / width)
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)


def png_data_uri(image) -> str:
    """A uint8 RGB array, or the bytes of a PNG file, as a data: URI."""
    if not isinstance(image, bytes):
        import cv2

        ok, buf = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        if not ok:
            raise ValueError("could not encode a PNG")
        image = buf.tobytes()
    return "data:image/png;base64," + base64.b64encode(image).decode("ascii")


def frame_grid(content, videos: dict, meta, frames: list[dict], thumb_width: int = 240) -> dict:
    """Thumbnails of the same frames of the input and of each job's video: {"input": [uri...], job: [uri...]}.
    All at the size of the first job's video scaled to thumb_width, so the cells line up. `meta`: the
    content's probe (its frames as the pipeline numbers them, variable timing included)."""
    fps = Fraction(meta.fps)
    first = probe(next(iter(videos.values())))
    size = thumbnail_size(first.width, first.height, thumb_width)
    grid = {}
    for label, path in {"input": content, **videos}.items():
        cells = []
        for f in frames:
            timing = {"meta": meta} if label == "input" else {"fps": fps}  # results are constant-rate
            image = read_frames(path, f["frame"], 1, size=size, **timing)
            if len(image) != 1:
                raise MediaError(f"{path}: could not read frame {f['frame']}")
            cells.append(png_data_uri(image[0]))
        grid[label] = cells
    return grid


def _relative_url(path, page_dir: Path) -> str:
    return quote(os.path.relpath(Path(path).resolve(), page_dir.resolve()).replace(os.sep, "/"))


_STYLE = ("body{font-family:sans-serif;margin:1.5em;max-width:1600px}table{border-collapse:collapse;margin:1em 0}"
          "th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}th{background:#eee}"
          "table.numbers td:nth-child(-n+3){text-align:left}p.note{color:#444;max-width:70em}"
          ".grid td,.grid th{text-align:center;vertical-align:top;font-size:small}"
          "table.grid{width:100%;table-layout:fixed}.grid th:first-child{width:9em}.grid td{padding:2px}"
          ".grid th.row{text-align:left;overflow-wrap:anywhere}"
          ".grid img{display:block;width:100%;height:auto}"  # the grid fills the page, whatever the frame size
          ".job{margin:2em 0;border-top:1px solid #ccc}.job video,.job img{display:block;margin:.5em 0}"
          ".job video{width:100%;max-width:1200px;height:auto}.job img{max-width:100%}"
          "nav a{margin-right:1em}")


def to_html(c: dict, title: str, tally: dict | None = None, grid: dict | None = None, frames=None, fps=None,
            media: dict | None = None, assess_url: str | None = None, answers_dir: str = "assessments/") -> str:
    """The page. grid/frames: thumbnails (`frame_grid`) of the picked frames (`pick_frames`); media: per job
    {"plot": data URI, "side_by_side": URL relative to the page}; assess_url: the A/B page, relative;
    answers_dir: where its answers go."""
    esc = html.escape

    def table(head, body, cls="numbers"):
        th = "".join(f"<th>{esc(str(x))}</th>" for x in head)
        trs = "".join("<tr>" + "".join(f"<td>{esc(str(x))}</td>" for x in row) + "</tr>" for row in body)
        return f"<table class='{cls}'><thead><tr>{th}</tr></thead><tbody>{trs}</tbody></table>"

    kinds = {r["job"]: r["kind"] for r in c["rows"]}
    parts = [f"<h1>{esc(title)}</h1><nav>"]
    for anchor, text in (("frames", "Frames"), ("numbers", "Numbers"), ("assessment", "Manual assessment"),
                         ("jobs", "Videos and plots"), ("raw", "Raw values")):
        parts.append(f"<a href='#{anchor}'>{text}</a>")
    parts.append("</nav>")
    if grid:
        fps = Fraction(fps)
        head = "".join(f"<th>frame {f['frame']}<br>{float(f['frame'] / fps):.2f} s"
                       + (f"<br><b>{esc(f['why'])}</b>" if f["why"] else "") + "</th>" for f in frames)
        rows = []
        for label, cells in grid.items():
            name = "input" if label == "input" else f"{esc(label)}<br><small>{esc(kinds.get(label, ''))}</small>"
            imgs = "".join(f"<td><img src='{uri}' alt='{esc(label)} frame {f['frame']}'></td>"
                           for uri, f in zip(cells, frames))
            rows.append(f"<tr><th class='row'>{name}</th>{imgs}</tr>")
        parts.append(f"<h2 id='frames'>Frames</h2><p class='note'>The same frames of the input (first row) and of "
                     "every job.</p>"
                     f"<table class='grid'><thead><tr><th></th>{head}</tr></thead><tbody>{''.join(rows)}</tbody>"
                     "</table>")
    t = _tables(c)
    parts.append(f"<h2 id='numbers'>Numbers</h2><h3>Relative to the input</h3>{table(*t['relative'])}"
                 f"<p class='note'>{esc(_NOTE_RELATIVE)}</p>"
                 + (f"<p class='note'>{esc(measurement_note(c))}</p>" if measurement_note(c) else "")
                 + "<h3>Ratios to the baselines</h3>")
    parts.append(table(*t["ratios"]) if t["ratios"][1] else f"<p>{esc(_NO_BASELINES)}</p>")
    parts.append(f"<p class='note'>{esc(_NOTE)}</p><h2 id='assessment'>Manual assessment (blind A/B)</h2>")
    if tally:
        for question, head, body in _tally_tables(tally):
            parts.append(f"<h3>{esc(question)}</h3>{table(head, body, 'numbers tally')}")
        parts.append(f"<p class='note'>{esc(_tally_note(tally))}</p>")
    else:
        parts.append("<p class='note'>No answers yet.</p>")
    if assess_url:
        parts.append(f"<p class='note'>The blind A/B page for viewers: <a href='{esc(assess_url)}'>{esc(assess_url)}"
                     f"</a>. Put the CSV files they download into <code>{esc(answers_dir)}</code> and run the "
                     "workflow again (or <code>artify assess --tally</code>) to see their tally here.</p>")
    if media:
        parts.append("<h2 id='jobs'>Videos and plots</h2>")
        for r in c["rows"]:
            m = media.get(r["job"], {})
            parts.append(f"<div class='job'><h3>{esc(r['job'])} <small>({esc(r['kind'])}; {esc(r['settings'])})"
                         "</small></h3>")
            if m.get("side_by_side"):
                parts.append(f"<video controls loop preload='auto' src='{esc(m['side_by_side'])}'>"
                             f"<a href='{esc(m['side_by_side'])}'>side by side</a></video>"
                             "<p class='note'>input | output | the current style, the schedule's weights below</p>")
            if m.get("plot"):
                parts.append(f"<img src='{m['plot']}' alt='per-frame plot of {esc(r['job'])}'>")
            parts.append("</div>")
    parts.append(f"<h2 id='raw'>Raw values</h2>{table(*t['raw'])}")
    return (f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{esc(title)}</title>"
            f"<style>{_STYLE}</style></head><body>{''.join(parts)}</body></html>\n")


def compare(entries: list[dict], out_md, out_html, title: str = "Comparison", content=None, meta_json=None,
            frames: int = 5, tally_json=None, assess_page=None, answers_dir: str = "assessments/") -> dict:
    """Write the comparison of `entries` (see `comparison`) as Markdown and HTML; returns it.

    With `content` and `meta_json` (the content video and its meta.json) the page gets the frame grid of the
    entries that give "video" (their stylized.mp4; "per_frame", their per-frame.tsv, finds the worst frame of
    the results, or of any job when there are only baselines);
    entries giving "plot" (per-frame.png) and "side_by_side" (mp4) get them shown. tally_json: the viewers'
    tally (`artify assess --tally`); assess_page: the A/B page, linked; answers_dir: where its answers go.
    """
    c = comparison(entries)
    tally = json.loads(Path(tally_json).read_text()) if tally_json else None
    page_dir = Path(out_html).parent
    grid = picks = fps = None
    videos = {e["job"]: e["video"] for e in entries if e.get("video")}
    if content is not None and meta_json is not None and videos:
        meta = VideoMeta.load(meta_json)
        fps = meta.fps
        n = min(probe(v).frames for v in videos.values())
        # the worst frame of the results themselves (a per-frame baseline is worst almost everywhere)
        tables = {e["job"]: e["per_frame"] for e in entries if e.get("per_frame") and e["kind"] == "result"}
        picks = pick_frames(n, frames, tables or {e["job"]: e["per_frame"] for e in entries if e.get("per_frame")})
        grid = frame_grid(content, videos, meta, picks)
    media = {}
    for e in entries:
        m = {}
        if e.get("plot"):
            m["plot"] = png_data_uri(Path(e["plot"]).read_bytes())
        if e.get("side_by_side"):
            m["side_by_side"] = _relative_url(e["side_by_side"], page_dir)
        media[e["job"]] = m
    assess_url = _relative_url(assess_page, page_dir) if assess_page else None
    atomic_write_text(out_md, to_markdown(c, title, tally))
    atomic_write_text(out_html, to_html(c, title, tally, grid, picks, fps, media if any(media.values()) else None,
                                         assess_url, answers_dir))
    return c
