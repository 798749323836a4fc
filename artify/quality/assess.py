"""Manual assessment: a blind pairwise (A/B) page from the jobs on one content video, and the tally of the
answers viewers save from it.

The page is one HTML file with its clips inlined: short clips of the same stretch of the video from two
jobs, shown left and right (the input above them for reference), and three questions per pair: which is
steadier, which carries the style better, which keeps the content better (or "same"). The page never names
a job: each clip has a random id, and the key from those ids to the jobs is written beside the page (and
kept under the answers folder by the page's sheet id), never into it. The page shuffles the pairs and which
side each clip is on every time it is opened, and the viewer downloads the answers as a CSV:
sheet, session, trial, question, left, right, choice (left | same | right).

`tally` reads any number of those CSVs with the keys of their sheets and gives, per question, each job's win
rate ((wins + half the "same" answers) / comparisons) with Wilson's 95 % score interval, and the counts of
each pair.
"""
from __future__ import annotations

import base64
import csv
import html
import json
import math
import secrets
import tempfile
import time
from fractions import Fraction
from importlib import resources
from pathlib import Path

from artify.atomic import atomic_write_text
from artify.media.video import MediaError, VideoMeta, probe, read_frames, write_frames_h264
from artify.quality.compare import fmt, thumbnail_size

# (name in the CSV, title, the question as the viewer reads it)
QUESTIONS = [
    ("steadiness", "Steadiness", "Which is steadier: less flicker, crawling or popping texture from frame to frame?"),
    ("style", "Style", "Which carries the painting's style better: its colours, strokes and texture?"),
    ("content", "Content kept", "Which keeps the original's content better: its shapes, objects and faces?"),
]
CHOICES = ("left", "same", "right")
CSV_COLUMNS = ["sheet", "session", "trial", "question", "left", "right", "choice"]
Z95 = 1.959963984540054
CLIP_CRF = 18  # H.264 quality of the page's clips: visually lossless, every page alike (not a job's `crf`)


class AnswersError(ValueError):
    """An answers CSV or key that cannot be used; the message names the file and the problem."""


def clip_starts(n: int, clip_frames: int, clips: int) -> list[int]:
    """First frames of `clips` evenly spaced stretches of clip_frames in a video of n frames (fewer when the
    video is too short for them to differ)."""
    clip_frames = min(clip_frames, n)
    last = n - clip_frames
    return sorted({round(last * i / (clips - 1)) if clips > 1 else last // 2 for i in range(clips)})


def _clip_data(frames, fps: Fraction, tmp_dir: Path) -> str:
    """Frames as an H.264 mp4 (no audio), base64."""
    path = tmp_dir / "clip.mp4"
    write_frames_h264(path, frames, fps, crf=CLIP_CRF)
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    path.unlink()
    return data


def build_assessment(content, videos: dict, meta_json, out_html, out_key, *, clips: int, seconds: float,
                     key_archive=None, width: int = 480, title: str | None = None) -> dict:
    """The blind A/B page of `videos` ({job: stylized.mp4}, at least two) on `content` -> out_html, and its key
    -> out_key (and key_archive/{sheet}.json when given, so answers to an earlier page stay readable after
    the page is rebuilt). `clips` stretches of `seconds` each (the settings assess_clips and assess_seconds),
    at most `width` pixels wide. Returns the key."""
    if len(videos) < 2:
        raise ValueError(f"{content}: a pairwise assessment needs at least two jobs, got {len(videos)}")
    meta = VideoMeta.load(meta_json)  # the content's: its frames as the pipeline numbers them
    fps = Fraction(meta.fps)
    metas = {job: probe(path) for job, path in videos.items()}
    n = min(m.frames for m in metas.values())
    first = next(iter(metas.values()))
    size = thumbnail_size(first.width, first.height, width)
    clip_frames = min(n, max(2, round(seconds * fps)))
    rng = secrets.SystemRandom()
    sheet = secrets.token_hex(6)
    key = {"sheet": sheet, "content": str(content), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
           "questions": [q for q, _, _ in QUESTIONS], "segments": [], "clips": {}}
    segments, clip_data = [], {}
    with tempfile.TemporaryDirectory(prefix="artify-assess-") as tmp:
        tmp = Path(tmp)
        for start in clip_starts(n, clip_frames, clips):
            reference = read_frames(content, start, clip_frames, size=size, meta=meta)
            if len(reference) != clip_frames:
                raise MediaError(f"{content}: could not read frames {start}..{start + clip_frames}")
            ids = []
            for job, path in videos.items():
                frames = read_frames(path, start, clip_frames, size=size, fps=fps)
                if len(frames) != clip_frames:
                    raise MediaError(f"{path}: could not read frames {start}..{start + clip_frames}")
                clip = secrets.token_hex(4)
                while clip in key["clips"]:
                    clip = secrets.token_hex(4)
                key["clips"][clip] = {"job": job, "start": start, "frames": clip_frames}
                clip_data[clip] = _clip_data(frames, fps, tmp)
                ids.append(clip)
            rng.shuffle(ids)  # the order of the jobs must not show through the order of the ids
            segments.append({"reference": _clip_data(reference, fps, tmp), "clips": ids,
                             "seconds": [round(float(start / fps), 2), round(float((start + clip_frames) / fps), 2)]})
            key["segments"].append({"start": start, "frames": clip_frames, "clips": ids})
    title = title or f"Which is better? {Path(content).stem}"
    page = _page(title, sheet, segments, clip_data, size)
    atomic_write_text(out_key, json.dumps(key, indent=2) + "\n")
    if key_archive is not None:
        atomic_write_text(Path(key_archive) / f"{sheet}.json", json.dumps(key, indent=2) + "\n")
    atomic_write_text(out_html, page)
    return key


def _page_file(name: str) -> str:
    """The A/B page's style (assess.css) or script (assess.js), files of their own beside this module (package
    data): the page inlines them, so that it stays one file a viewer can open from anywhere."""
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def _page(title: str, sheet: str, segments: list[dict], clip_data: dict, size: tuple[int, int]) -> str:
    questions = [{"name": q, "title": t, "text": text} for q, t, text in QUESTIONS]
    data = (f"const SHEET = {json.dumps(sheet)};\nconst QUESTIONS = {json.dumps(questions)};\n"
            f"const SEGMENTS = {json.dumps(segments)};\n"
            f"const CLIPS = {json.dumps(dict(sorted(clip_data.items())))};\n")  # by random id, not in job order
    esc = html.escape
    w, h = size
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{esc(title)}</title><style>{_page_file("assess.css")}</style></head><body>
<h1>{esc(title)}</h1>
<p>Each pair shows the same stretch of a video styled in two ways, left and right, with the original above
them. Watch both (they loop), then answer the three questions. The pairs come in random order and the two
versions are not named. When you have answered what you can, press <b>Download answers</b> and send the
CSV file back.</p>
<div class="reference"><figure><video id="reference" muted loop playsinline width="{w}" height="{h}"></video>
<figcaption>original</figcaption></figure></div>
<p id="stretch" style="text-align:center"></p>
<div class="pair">
<figure><video id="left" muted loop playsinline width="{w}" height="{h}"></video><figcaption>Left</figcaption></figure>
<figure><video id="right" muted loop playsinline width="{w}" height="{h}"></video><figcaption>Right</figcaption></figure>
</div>
<div id="questions"></div>
<nav><button id="previous">&larr; Previous pair</button><span id="progress"></span>
<button id="next">Next pair &rarr;</button></nav>
<p id="done" hidden><b>All answered, thank you.</b></p>
<p><button id="download">Download answers (CSV)</button> <span id="saved"></span></p>
<script>{data}{_page_file("assess.js")}</script>
</body></html>
"""


# ------------------------------------------------------------------------------------------------- tally

def wilson(successes: float, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson's score interval for a proportion (successes may be fractional: ties count half)."""
    if n == 0:
        return float("nan"), float("nan")
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def load_keys(paths) -> dict[str, dict]:
    """{sheet: key} from key files and folders of key files."""
    keys = {}
    for path in map(Path, paths):
        files = sorted(path.glob("*.json")) if path.is_dir() else [path]
        for f in files:
            try:
                key = json.loads(f.read_text())
                keys[key["sheet"]] = key
            except (OSError, ValueError, KeyError, TypeError) as e:
                raise AnswersError(f"{f}: not an assessment key ({e})") from None
    return keys


def read_answers(paths, keys: dict[str, dict]) -> list[dict]:
    """The answers of every CSV, each {sheet, session, trial, question, a, b, choice} with a/b the left and
    right jobs. A session's answer given in several files (a viewer who downloaded twice) counts once: the
    last file's."""
    questions = {q for q, _, _ in QUESTIONS}
    answers = {}
    for path in map(Path, paths):
        try:
            with open(path, newline="", encoding="utf-8") as f:
                reader = csv.DictReader(f)
                if reader.fieldnames is None or set(CSV_COLUMNS) - set(reader.fieldnames):
                    raise AnswersError(f"{path}: not an answers sheet (columns {reader.fieldnames}, expected "
                                       f"{CSV_COLUMNS})")
                for line, row in enumerate(reader, start=2):
                    where = f"{path} line {line}"
                    key = keys.get(row["sheet"])
                    if key is None:
                        raise AnswersError(f"{where}: no key for sheet {row['sheet']!r} (the key is written "
                                           "beside the page when it is built; pass it with --key)")
                    if row["question"] not in questions or row["choice"] not in CHOICES:
                        raise AnswersError(f"{where}: question {row['question']!r} / choice {row['choice']!r} "
                                           f"is not one of {sorted(questions)} / {CHOICES}")
                    left, right = key["clips"].get(row["left"]), key["clips"].get(row["right"])
                    if left is None or right is None or left["start"] != right["start"] or left["job"] == right["job"]:
                        raise AnswersError(f"{where}: clips {row['left']!r} and {row['right']!r} are not a pair "
                                           f"of sheet {row['sheet']}")
                    answers[(row["sheet"], row["session"], row["trial"], row["question"])] = {
                        "sheet": row["sheet"], "session": row["session"], "question": row["question"],
                        "a": left["job"], "b": right["job"], "choice": row["choice"]}
        except (OSError, UnicodeDecodeError, csv.Error) as e:
            raise AnswersError(f"{path}: cannot read the answers ({e})") from None
    return list(answers.values())


def tally(csv_paths, key_paths) -> dict:
    """Win rates with 95 % intervals per question and job, and counts per pair, from answers CSVs.

    Returns {"files", "sheets", "answers", "questions": [{"name", "title", "jobs": [{job, wins, ties, losses,
    n, win_rate, low, high}] (best first), "pairs": [{a, b, a_wins, b_wins, ties}]}]}.
    """
    csv_paths = list(csv_paths)
    answers = read_answers(csv_paths, load_keys(key_paths))
    if not answers:
        raise AnswersError(f"{', '.join(map(str, csv_paths)) or 'no files'}: no answers")
    out = {"files": len(csv_paths), "sheets": sorted({a["sheet"] for a in answers}), "answers": len(answers),
           "questions": []}
    for name, title, _ in QUESTIONS:
        mine = [a for a in answers if a["question"] == name]
        jobs, pairs = {}, {}
        for a in mine:
            first, second = sorted((a["a"], a["b"]))
            pair = pairs.setdefault((first, second), {"a": first, "b": second, "a_wins": 0, "b_wins": 0, "ties": 0})
            winner = {"left": a["a"], "right": a["b"], "same": None}[a["choice"]]
            if winner is None:
                pair["ties"] += 1
            else:
                pair["a_wins" if winner == first else "b_wins"] += 1
            for job in (a["a"], a["b"]):
                j = jobs.setdefault(job, {"job": job, "wins": 0, "ties": 0, "losses": 0})
                j["ties" if winner is None else "wins" if winner == job else "losses"] += 1
        for j in jobs.values():
            j["n"] = j["wins"] + j["ties"] + j["losses"]
            score = j["wins"] + 0.5 * j["ties"]
            j["win_rate"] = score / j["n"]
            j["low"], j["high"] = wilson(score, j["n"])
        if mine:
            out["questions"].append({"name": name, "title": title,
                                     "jobs": sorted(jobs.values(), key=lambda j: (-j["win_rate"], j["job"])),
                                     "pairs": sorted(pairs.values(), key=lambda p: (p["a"], p["b"]))})
    return out


def write_tally(csv_paths, key_paths, out_json) -> dict:
    result = tally(csv_paths, key_paths)
    atomic_write_text(out_json, json.dumps(result, indent=2) + "\n")
    return result


def tally_text(result: dict) -> str:
    """The tally as plain text, one table per question."""
    lines = [f"{result['answers']} answers, {result['files']} file(s), sheet(s) {', '.join(result['sheets'])}"]
    for q in result["questions"]:
        lines += ["", q["title"], f"{'job':<24} {'win rate':>8}  {'95 % interval':<15} {'W':>3} {'=':>3} {'L':>3}"]
        for j in q["jobs"]:
            lines.append(f"{j['job']:<24} {fmt(j['win_rate']):>8}  {fmt(j['low']) + ' – ' + fmt(j['high']):<15} "
                         f"{j['wins']:>3} {j['ties']:>3} {j['losses']:>3}")
    return "\n".join(lines) + "\n"
