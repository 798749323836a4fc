"""End to end: a tiny job with baselines on a real clip, through Snakemake and `snakemake --report`.

One run is shared by the tests of this module: every output for people exists and has the right shape,
the comparison table has the ratios, metrics.json has the cost, the report HTML holds every metric, and the
comparison and blind A/B pages work in a browser, the A/B page's answers reaching the comparison (last: it
adds answers to the run and runs the workflow again).
"""
from __future__ import annotations

import base64
import json
import re

import numpy as np
import pytest

from tests.conftest import require_shared
from tests.test_pipeline import snakemake, write_jobs

pytestmark = pytest.mark.e2e

# as small as still means something: 8 frames at 64 px, few iterations, two chunks
SMALL = {"max_frames": 8, "size": 64, "chunk_frames": 4, "chunk_overlap": 1, "iterations": 6, "warm_iterations": 3,
         "coarse_to_fine": "false", "baselines": "true", "contact_frames": 4}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    content = require_shared("videos", "adain_cutBunny.mp4")
    style = require_shared("styles", "starry_night.jpg")
    workdir = tmp_path_factory.mktemp("report")
    write_jobs(workdir, content, style, **SMALL)
    snakemake(workdir)
    snakemake(workdir, "--report", str(workdir / "report.html"))
    return workdir


def metrics(workdir, job):
    return json.loads((workdir / "results" / job / "metrics.json").read_text())


def test_baselines_are_made_and_evaluated_by_the_same_code(run):
    from artify.media.video import probe

    for job in ("tiny", "tiny.perframe", "tiny.deflicker"):
        m = metrics(run, job)
        assert m["frames"] == 8 and set(m["warp_error"]) == {"short", "long"}, job
        assert probe(run / "results" / job / "stylized.mp4").frames == 8
        assert (run / "results" / job / "per-frame.tsv").exists()
    # the Check: on a real clip the input's warping error is below a per-frame-stylized output's
    perframe = metrics(run, "tiny.perframe")
    assert perframe["warp_error_input"]["short"] < perframe["warp_error"]["short"]
    # the per-frame job runs no flow; the deflicker baseline's cost includes the per-frame stylization
    assert "flow_chunk" in metrics(run, "tiny")["stages"] and "flow_chunk" not in perframe["stages"]
    stages = metrics(run, "tiny.deflicker")["stages"]
    assert "deflicker" in stages and "stylize_chunk" in stages


def test_metrics_have_seconds_per_frame_per_stage_and_peak_memory(run):
    m = metrics(run, "tiny")
    assert {"probe", "plan_chunks", "extract_frames", "flow_chunk", "stylize_chunk", "assemble",
            "detect_scenes", "select_keyframes", "plan_schedule", "detect_cuts"} <= set(m["stages"])
    spans = len({line.split("\t")[-1] for line in (run / "results/tiny/chunks.tsv").read_text().splitlines()[1:]})
    assert m["stages"]["stylize_chunk"]["jobs"] == m["stages"]["flow_chunk"]["jobs"] == spans  # a job per span
    assert m["stages"]["stylize_chunk"]["seconds_per_frame"] > 0
    assert m["seconds_per_frame"] == pytest.approx(sum(s["seconds_per_frame"] for s in m["stages"].values()))
    assert m["peak_memory_mb"] > 100  # torch + VGG19 in stylize_chunk


def test_people_material_has_the_expected_shape(run):
    from PIL import Image

    from artify.quality.report import bar_height
    from artify.media.video import probe

    out = run / "results/tiny"
    w, h = probe(out / "stylized.mp4").width, probe(out / "stylized.mp4").height
    sbs = probe(out / "side_by_side.mp4")
    assert sbs.frames == 8 and (sbs.width, sbs.height) == (3 * w, h + bar_height(h)) and sbs.audio
    with Image.open(out / "contact_sheet.png") as sheet:
        assert sheet.format == "PNG" and sheet.size == (4 * (w + 4) + 4, 2 * h + 16 + 8)
    for png in ("per-frame.png", "keyframes.png", "schedule.png"):
        with Image.open(out / png) as img:
            img.verify()


def test_comparison_table_has_ratios_to_both_baselines(run):
    from artify.quality.compare import fmt

    md = (run / "results/comparison/adain_cutBunny.md").read_text()
    html = (run / "results/comparison/adain_cutBunny.html").read_text()
    ours, perframe, defl = (metrics(run, j) for j in ("tiny", "tiny.perframe", "tiny.deflicker"))
    for base, kind in ((perframe, "per-frame"), (defl, "deflicker")):
        r = ours["warp_error"]["short"] / base["warp_error"]["short"]
        row = next(line for line in md.splitlines() if line.startswith(f"| tiny | tiny.{kind.replace('-', '')}"))
        assert f"| {fmt(r)} |" in row, (row, r)
    assert "tiny.deflicker" in html and "<table class='numbers'>" in html


def _embedded_texts(page: str) -> str:
    """The report page and every file embedded in it (Snakemake embeds each result as a base64 data: URI,
    data:{mime};charset=...;filename={name};base64,...)."""
    texts = [page]
    for m in re.finditer(r";base64,([A-Za-z0-9+/=]+)", page):
        try:
            texts.append(base64.b64decode(m.group(1)).decode("utf-8", errors="ignore"))
        except ValueError:
            continue
    return "\n".join(texts)


def test_report_html_holds_every_item_and_every_metric(run):
    page = (run / "report.html").read_text()
    content = _embedded_texts(page)
    for item in ("side_by_side.mp4", "contact_sheet.png", "per-frame.png", "metrics.json", "per-frame.tsv",
                 "adain_cutBunny.html", "keyframes.png", "schedule.png"):
        assert item in page, item
    # every metric of the run, as the comparison table embedded in the report writes it
    from artify.quality.compare import COLUMNS, fmt, value

    for job in ("tiny", "tiny.perframe", "tiny.deflicker"):
        m = metrics(run, job)
        for key, _, _ in COLUMNS:
            if value(m, key) is not None:
                assert f"<td>{fmt(value(m, key))}</td>" in content, (job, key)
        assert str(m["warp_error"]["short"]) in content  # and metrics.json itself
    assert np.isfinite(metrics(run, "tiny")["ssim"])


def test_pages_work_in_a_browser_and_answers_reach_the_comparison(run, artefacts):
    """The comparison and A/B pages of the run, opened from disk in Chromium: every picture and video loads
    and plays; a viewer clicks through the A/B page and downloads the answers; with the CSV in
    assessments/{content}/ the workflow tallies it into the comparison. Screenshots kept in test-artefacts/."""
    from artify.quality.compare import fmt
    from tests.browser import Browser, require_chromium
    from tests.test_pages import assert_every_picture_and_video_loads, assert_every_video_plays, click_through, \
        clips_on_the_page

    require_chromium()
    comparison, ab = run / "results/comparison/adain_cutBunny.html", run / "results/assess/adain_cutBunny.html"
    key = json.loads((run / "results/assess/adain_cutBunny.key.json").read_text())
    assert json.loads((run / "assessments/adain_cutBunny/keys" / f"{key['sheet']}.json").read_text()) == key
    jobs = ("tiny", "tiny.perframe", "tiny.deflicker")
    assert sorted(c["job"] for c in key["clips"].values()) == sorted(jobs)  # 8 frames: one stretch
    with Browser(downloads=run / "downloads") as browser:
        browser.open(comparison)
        columns = browser.js("document.querySelectorAll('table.grid thead th').length") - 1
        assert columns in (5, 6)  # 5 evenly spaced frames, and the worst one when it is not among them
        assert_every_picture_and_video_loads(browser, images=(1 + len(jobs)) * columns + len(jobs), videos=len(jobs))
        assert_every_video_plays(browser)
        text = browser.js("document.body.innerText")
        m = metrics(run, "tiny")
        assert fmt(m["style_distance"] / m["style_distance_input"]) in text and "No answers yet" in text
        browser.open(ab)
        assert_every_picture_and_video_loads(browser, images=0, videos=3)
        assert_every_video_plays(browser)
        assert "tiny" not in browser.js("document.documentElement.outerHTML")
        browser.screenshot(artefacts / "assess-e2e.png")

        def prefer_tiny(question, left, right):  # the temporal job is steadier; nothing else is asked of it
            if question != "steadiness" or "tiny" not in (left, right):
                return "same"
            return "left" if left == "tiny" else "right"

        given = click_through(browser, key, prefer_tiny, identify=clips_on_the_page)
        assert len(given) == 3 * 3
        browser.click("#download")
        sheet = browser.wait_download()
    answers = run / "assessments/adain_cutBunny" / sheet.name
    sheet.replace(answers)
    snakemake(run)
    tally = json.loads((run / "results/assess/adain_cutBunny.tally.json").read_text())
    steadiness = {j["job"]: j for j in tally["questions"][0]["jobs"]}
    assert tally["answers"] == 9 and (steadiness["tiny"]["wins"], steadiness["tiny"]["n"]) == (2, 2)
    md = (run / "results/comparison/adain_cutBunny.md").read_text()
    assert "### Steadiness" in md and "| tiny | 1.00 | 0.342 – 1.00 | 2 | 0 | 0 | 2 |" in md
    with Browser() as browser:
        browser.open(comparison)
        assert "9 answers from 1 filled-in sheet(s)" in browser.js("document.body.innerText")
        assert_every_picture_and_video_loads(browser, images=(1 + len(jobs)) * columns + len(jobs), videos=len(jobs))
        browser.screenshot(artefacts / "comparison-e2e.png")
