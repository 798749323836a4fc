"""The blind A/B page (built from the jobs on one content video) and the tally of viewers' answers; the
comparison page's frame grid and number formatting. The pages in a real browser: tests/test_pages.py."""
from __future__ import annotations

import base64
import csv
import json
import re
import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest

from tests.conftest import REPO, TINTS


# --------------------------------------------------------------------------------------------- numbers

@pytest.mark.parametrize("v, text", [
    (9478902880, "9.48 × 10⁹"), (37715968896.0, "3.77 × 10¹⁰"), (0.25, "0.250"), (0.0838, "0.0838"),
    (0.00123456, "0.00123"), (0.000123, "1.23 × 10⁻⁴"), (1234.5, "1,230"), (12.345, "12.3"), (1.0, "1.00"),
    (0.99996, "1.00"), (9.9996e9, "1.00 × 10¹⁰"), (999999, "1,000,000"), (-0.5, "-0.500"), (0, "0"),
    (None, "–"), (float("nan"), "–"),
])
def test_numbers_have_three_significant_digits(v, text):
    from artify.quality.compare import fmt

    assert fmt(v) == text


def test_comparison_gives_distances_relative_to_the_input(tinted_jobs, tmp_path):
    from artify.quality.compare import compare

    _, entries = tinted_jobs
    c = compare(entries, tmp_path / "c.md", tmp_path / "c.html")
    rel = {r["job"]: r["relative"] for r in c["rows"]}
    assert rel["alpha"]["style_distance"] == pytest.approx(9478902880 / 37715968896)
    assert rel["gamma"]["warp_error.short"] == pytest.approx(6.0)
    md = (tmp_path / "c.md").read_text()
    # the headline table: relative to the input, 3 significant digits; the raw values further down
    assert "| alpha | result | gatys | 2.00 | 3.00 | 2.00 | 0.251 | 0.500 | 0.400 | 3.00 | 1,230 |" in md
    assert "| input | floor | the content itself | 1.00 | 1.00 | 1.00 | 1.00 | 0 | 1.00 | – | – |" in md
    assert md.index("Metrics relative to the input") < md.index("Raw values")
    assert "| alpha | result | gatys | 0.0100 | 0.0300 | 0.00200 | 9.48 × 10⁹ |" in md
    assert "9478902880" not in md


# ------------------------------------------------------------------------------------------ frame grid

def test_picked_frames_are_evenly_spaced_plus_the_worst_warping_error(tinted_jobs):
    from artify.quality.compare import pick_frames

    root, entries = tinted_jobs
    picks = pick_frames(48, 5, {e["job"]: e["per_frame"] for e in entries})
    assert [p["frame"] for p in picks] == [0, 12, 24, 30, 35, 47]
    assert picks[3]["why"] == "worst warping error (beta: 0.500)"
    assert [p["frame"] for p in pick_frames(3, 5)] == [0, 1, 2]


def _data_uri_image(uri: str) -> np.ndarray:
    import cv2

    assert uri.startswith("data:image/png;base64,")
    image = cv2.imdecode(np.frombuffer(base64.b64decode(uri.split(",", 1)[1]), np.uint8), cv2.IMREAD_COLOR)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def test_comparison_page_shows_the_same_frames_of_input_and_every_job(tinted_jobs, tmp_path):
    from artify.quality.compare import compare
    from artify.media.video import read_frames

    root, entries = tinted_jobs
    page = tmp_path / "comparison" / "clip.html"
    compare(entries, tmp_path / "clip.md", page, content=root / "content clip.mp4", meta_json=root / "meta.json",
            assess_page=tmp_path / "assess" / "clip.html")
    text = page.read_text()
    rows = re.findall(r"<tr><th class='row'>(.*?)</tr>", text)
    assert len(rows) == 4 and rows[0].startswith("input") and "alpha" in rows[1] and "gamma" in rows[3]
    content = read_frames(root / "content clip.mp4")
    for row, job in zip(rows, ["input", *TINTS]):
        cells = [_data_uri_image(u) for u in re.findall(r"<img src='([^']+)'", row)]
        assert len(cells) == 6
        for image, frame in zip(cells, [0, 12, 24, 30, 35, 47]):
            assert image.shape == (96, 160, 3)  # 160 wide: under the thumbnail width, kept
            expected = content[frame].astype(int)
            if job != "input":
                expected[..., TINTS[job]] = 230
            assert np.abs(image.astype(int) - expected).mean() < 6, (job, frame)
    # every job's plot inlined, its side-by-side linked relative to the page (the page opens from disk)
    for job in TINTS:  # root is tmp_path / "run dir"
        assert f"<video controls loop preload='auto' src='../run%20dir/results/{job}/side_by_side.mp4'>" in text
    assert text.count("<img src='data:image/png;base64,") == 4 * 6 + 3
    assert "href='../assess/clip.html'" in text and "No answers yet" in text


# ------------------------------------------------------------------------------------------- A/B page

def test_clip_starts_are_evenly_spaced_and_distinct():
    from artify.quality.assess import clip_starts

    assert clip_starts(240, 48, 3) == [0, 96, 192]
    assert clip_starts(72, 48, 3) == [0, 12, 24]
    assert clip_starts(30, 48, 3) == [0]  # shorter than a clip: the whole video once
    assert clip_starts(100, 20, 1) == [40]


def _page_data(page: str) -> dict:
    """The page's embedded data (SHEET, SEGMENTS, CLIPS) as Python values."""
    return {name: json.loads(re.search(rf"const {name} = (.*?);\n", page).group(1)) for name in
            ("SHEET", "QUESTIONS", "SEGMENTS", "CLIPS")}


def _decode_clip(b64: str, tmp_path) -> np.ndarray:
    from artify.media.video import read_frames

    path = tmp_path / "clip.mp4"
    path.write_bytes(base64.b64decode(b64))
    return read_frames(path)


def test_ab_page_is_blind_and_its_key_maps_every_clip_to_its_job(tinted_jobs, tmp_path):
    from artify.quality.assess import build_assessment
    from artify.media.video import read_frames

    root, entries = tinted_jobs
    videos = {e["job"]: e["video"] for e in entries}
    page, key_file = tmp_path / "assess" / "content clip.html", tmp_path / "assess" / "content clip.key.json"
    key = build_assessment(root / "content clip.mp4", videos, root / "meta.json", page, key_file,
                           key_archive=tmp_path / "answers" / "keys", clips=2, seconds=1.0)
    text = page.read_text()
    for job in TINTS:  # no job name anywhere in the page, not even in its data
        assert job not in text.lower()
    assert json.loads(key_file.read_text()) == key
    assert json.loads((tmp_path / "answers" / "keys" / f"{key['sheet']}.json").read_text()) == key
    data = _page_data(text)
    assert data["SHEET"] == key["sheet"] and set(data["CLIPS"]) == set(key["clips"])
    assert list(data["CLIPS"]) == sorted(data["CLIPS"])  # stored by id, not in the jobs' order
    assert [s["start"] for s in key["segments"]] == [0, 24] and all(s["frames"] == 24 for s in key["segments"])
    content = read_frames(root / "content clip.mp4").astype(int)
    for seg, page_seg in zip(key["segments"], data["SEGMENTS"]):
        assert sorted(key["clips"][c]["job"] for c in seg["clips"]) == sorted(TINTS)
        assert page_seg["clips"] == seg["clips"]
        window = content[seg["start"]:seg["start"] + seg["frames"]]
        reference = _decode_clip(page_seg["reference"], tmp_path).astype(int)
        assert reference.shape == window.shape and np.abs(reference - window).mean(axis=(1, 2, 3)).max() < 6
        for clip in seg["clips"]:  # every frame of every clip is that job's frame
            job = key["clips"][clip]["job"]
            expected = window.copy()
            expected[..., TINTS[job]] = 230
            frames = _decode_clip(data["CLIPS"][clip], tmp_path).astype(int)
            assert frames.shape == expected.shape
            assert np.abs(frames - expected).mean(axis=(1, 2, 3)).max() < 6, job
    # a new page is a new sheet with new ids
    again = build_assessment(root / "content clip.mp4", videos, root / "meta.json", page, key_file, clips=2,
                             seconds=1.0)
    assert again["sheet"] != key["sheet"] and not set(again["clips"]) & set(key["clips"])


def test_ab_page_needs_two_jobs(tinted_jobs, tmp_path):
    from artify.quality.assess import build_assessment

    root, entries = tinted_jobs
    with pytest.raises(ValueError, match="at least two jobs"):
        build_assessment(root / "content clip.mp4", {"alpha": entries[0]["video"]}, root / "meta.json",
                         tmp_path / "p.html", tmp_path / "k.json", clips=1, seconds=1.0)
    assert not (tmp_path / "p.html").exists()


# ---------------------------------------------------------------------------------------------- tally

KEY = {"sheet": "s1", "clips": {"a0": {"job": "A", "start": 0}, "b0": {"job": "B", "start": 0},
                                "c0": {"job": "C", "start": 0}, "a9": {"job": "A", "start": 9}}}


def _answers(path, rows, session="x"):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["sheet", "session", "trial", "question", "left", "right", "choice"])
        for i, (question, left, right, choice) in enumerate(rows):
            w.writerow(["s1", session, i + 1, question, left, right, choice])
    return path


def test_wilson_interval_matches_the_textbook():
    from artify.quality.assess import wilson

    low, high = wilson(8, 10)
    assert (round(low, 4), round(high, 4)) == (0.4902, 0.9433)
    low, high = wilson(0, 5)
    assert low == 0 and high == pytest.approx(0.4345, abs=1e-4)


def test_tally_counts_wins_ties_and_losses_per_question(tmp_path):
    from artify.quality.assess import tally

    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "s1.json").write_text(json.dumps(KEY))
    first = _answers(tmp_path / "v1.csv", [("steadiness", "a0", "b0", "left"), ("steadiness", "c0", "a0", "right"),
                                           ("steadiness", "b0", "c0", "same"), ("style", "b0", "a0", "left")])
    second = _answers(tmp_path / "v2.csv", [("steadiness", "b0", "a0", "right")], session="y")
    t = tally([first, second], [tmp_path / "keys"])
    assert t["answers"] == 5 and t["files"] == 2 and t["sheets"] == ["s1"]
    steady, style = t["questions"]
    assert steady["name"] == "steadiness" and style["name"] == "style"
    jobs = {j["job"]: j for j in steady["jobs"]}
    assert (jobs["A"]["wins"], jobs["A"]["ties"], jobs["A"]["losses"], jobs["A"]["n"]) == (3, 0, 0, 3)
    assert (jobs["B"]["wins"], jobs["B"]["ties"], jobs["B"]["losses"]) == (0, 1, 2)
    assert jobs["B"]["win_rate"] == pytest.approx(0.5 / 3) and jobs["C"]["win_rate"] == pytest.approx(0.25)
    assert steady["jobs"][0]["job"] == "A" and jobs["A"]["low"] == pytest.approx(0.4385, abs=1e-4)
    assert {(p["a"], p["b"]): (p["a_wins"], p["b_wins"], p["ties"]) for p in steady["pairs"]} == {
        ("A", "B"): (2, 0, 0), ("A", "C"): (1, 0, 0), ("B", "C"): (0, 0, 1)}
    assert [j["job"] for j in style["jobs"]] == ["B", "A"]


def test_a_viewer_who_downloads_twice_counts_once(tmp_path):
    from artify.quality.assess import tally

    (tmp_path / "k.json").write_text(json.dumps(KEY))
    early = _answers(tmp_path / "early.csv", [("steadiness", "a0", "b0", "left")])
    late = _answers(tmp_path / "late.csv", [("steadiness", "a0", "b0", "right"), ("style", "a0", "b0", "same")])
    t = tally([early, late], [tmp_path / "k.json"])
    assert t["answers"] == 2
    assert {j["job"]: j["wins"] for j in t["questions"][0]["jobs"]} == {"A": 0, "B": 1}  # the later answer


@pytest.mark.parametrize("row, message", [
    (("steadiness", "a0", "zz", "left"), "are not a pair of sheet s1"),
    (("steadiness", "a0", "a9", "left"), "are not a pair of sheet s1"),  # different stretches
    (("beauty", "a0", "b0", "left"), "question 'beauty'"),
    (("style", "a0", "b0", "both"), "choice 'both'"),
])
def test_bad_answers_are_one_clear_error_naming_the_file_and_line(tmp_path, row, message):
    from artify.quality.assess import AnswersError, tally

    (tmp_path / "k.json").write_text(json.dumps(KEY))
    path = _answers(tmp_path / "bad.csv", [("steadiness", "a0", "b0", "left"), row])
    with pytest.raises(AnswersError, match=f"bad.csv line 3: .*{re.escape(message)}"):
        tally([path], [tmp_path / "k.json"])


def test_answers_without_their_key_or_not_answers_at_all_are_refused(tmp_path):
    from artify.quality.assess import AnswersError, tally

    path = _answers(tmp_path / "a.csv", [("steadiness", "a0", "b0", "left")])
    (tmp_path / "other.json").write_text(json.dumps(dict(KEY, sheet="s2")))
    with pytest.raises(AnswersError, match="no key for sheet 's1'"):
        tally([path], [tmp_path / "other.json"])
    (tmp_path / "x.csv").write_text("a,b\n1,2\n")
    with pytest.raises(AnswersError, match="x.csv: not an answers sheet"):
        tally([tmp_path / "x.csv"], [tmp_path / "other.json"])


def test_assess_command_tallies_and_refuses_bad_use(tmp_path):
    def artify(*args):
        return subprocess.run([sys.executable, "-m", "artify", *map(str, args)], capture_output=True, text=True,
                              cwd=REPO)

    (tmp_path / "k.json").write_text(json.dumps(KEY))
    sheet = _answers(tmp_path / "answers 1.csv", [("steadiness", "a0", "b0", "left"), ("content", "c0", "b0", "same")])
    proc = artify("assess", "--tally", sheet, "--key", tmp_path / "k.json", "-o", tmp_path / "tally.json")
    assert proc.returncode == 0, proc.stderr
    assert "Steadiness" in proc.stdout and "Content kept" in proc.stdout
    assert json.loads((tmp_path / "tally.json").read_text())["answers"] == 2
    proc = artify("assess", "--tally", sheet, "--key", tmp_path / "gone.json", "-o", tmp_path / "t2.json")
    assert proc.returncode == 2 and proc.stderr.startswith("artify assess: error: ") and "gone.json" in proc.stderr
    assert not (tmp_path / "t2.json").exists()
    proc = artify("assess", "only-one=x.mp4", "--content", "c.mp4", "--meta", "m.json", "--key", "k", "-o", "p.html")
    assert proc.returncode == 2 and "at least two videos" in proc.stderr


def test_comparison_shows_the_tally(tinted_jobs, tmp_path):
    from artify.quality.assess import tally
    from artify.quality.compare import compare

    _, entries = tinted_jobs
    (tmp_path / "k.json").write_text(json.dumps(dict(KEY, clips={"a0": {"job": "alpha", "start": 0},
                                                                  "b0": {"job": "beta", "start": 0}})))
    sheet = _answers(tmp_path / "a.csv", [("steadiness", "a0", "b0", "left")])
    (tmp_path / "tally.json").write_text(json.dumps(tally([sheet], [tmp_path / "k.json"])))
    compare(entries, tmp_path / "c.md", tmp_path / "c.html", tally_json=tmp_path / "tally.json")
    md = (tmp_path / "c.md").read_text()
    assert "### Steadiness" in md and "| alpha | 1.00 | 0.207 – 1.00 | 1 | 0 | 0 | 1 |" in md
    assert "1 answers from 1 filled-in sheet(s)" in md
    assert "<td>0.207 – 1.00</td>" in (tmp_path / "c.html").read_text()


def test_fps_of_clips_follows_the_content(tinted_jobs, tmp_path):
    """A clip of `seconds` at the content's frame rate: 1 s of a 24 fps video is 24 frames, played at 24 fps."""
    from artify.quality.assess import build_assessment
    from artify.media.video import probe

    root, entries = tinted_jobs
    key = build_assessment(root / "content clip.mp4", {e["job"]: e["video"] for e in entries[:2]},
                           root / "meta.json", tmp_path / "p.html", tmp_path / "k.json", clips=1, seconds=1.0)
    clip = next(iter(_page_data((tmp_path / "p.html").read_text())["CLIPS"].values()))
    (tmp_path / "c.mp4").write_bytes(base64.b64decode(clip))
    meta = probe(tmp_path / "c.mp4")
    assert meta.frames == 24 and Fraction(meta.fps) == 24 and not meta.audio
    assert key["segments"] == [{"start": 12, "frames": 24, "clips": key["segments"][0]["clips"]}]
