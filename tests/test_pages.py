"""The comparison page and the blind A/B page in a real headless Chromium, opened from disk as a person would:
every picture and video loads and plays, and clicking through the A/B page downloads a CSV with the answers
given. A screenshot of each page is kept in test-artefacts/ ($ARTIFY_TEST_ARTEFACTS).

Chromium comes from Debian's packages (`make test` installs it); without it these tests skip, and fail under
CI=true. The same checks on the pages of a real pipeline run: tests/test_report_pipeline.py.
"""
from __future__ import annotations

import csv
import json

import pytest

from tests.browser import Browser, require_chromium
from tests.conftest import TINTS


@pytest.fixture(autouse=True)
def chromium():
    return require_chromium()


def assert_every_picture_and_video_loads(browser: Browser, images: int, videos: int) -> None:
    media = browser.media()
    assert sum(m["tag"] == "img" for m in media) == images and sum(m["tag"] == "video" for m in media) == videos
    for m in media:
        assert m["width"] > 0 and m["height"] > 0 and m["ready"] >= 2, m


def assert_every_video_plays(browser: Browser) -> None:
    """Each video's clock moves when it plays: the browser decodes it (H.264 from disk or from the page)."""
    count = browser.js("document.querySelectorAll('video').forEach((v, i) => v.dataset.n = i) || "
                       "document.querySelectorAll('video').length")
    for i in range(count):
        assert browser.plays(f"video[data-n='{i}']") > 0.25, i


def test_comparison_page_shows_every_frame_video_and_plot_from_disk(tinted_jobs, tmp_path, artefacts):
    from artify.quality.compare import compare

    root, entries = tinted_jobs
    page = root / "results" / "comparison" / "content clip.html"
    compare(entries, page.with_suffix(".md"), page, title="Comparison on content clip.mp4",
            content=root / "content clip.mp4", meta_json=root / "meta.json")
    with Browser() as browser:
        browser.open(page)
        # input + 3 jobs x (5 evenly spaced + the worst frame), and each job's plot; each job's side-by-side
        assert_every_picture_and_video_loads(browser, images=4 * 6 + 3, videos=3)
        assert_every_video_plays(browser)
        text = browser.js("document.body.innerText")
        assert "style distance ×input" in text and "9.48 × 10⁹" in text and "worst warping error (beta: 0.500)" in text
        shot = browser.screenshot(artefacts / "comparison-synthetic.png")
    assert shot.stat().st_size > 10_000


def _displayed_jobs(browser: Browser, key=None) -> dict:
    """Which job each of the left and right videos shows, from the colour of the frame the browser decoded
    (the tinted jobs), and the clip id it holds."""
    colours = browser.js("""(async () => {
        const out = {};
        for (const id of ['left', 'right']) {
            const v = document.getElementById(id);
            const t0 = performance.now();
            while (v.readyState < 2 && performance.now() - t0 < 20000) await new Promise(r => setTimeout(r, 50));
            const c = document.createElement('canvas'); c.width = v.videoWidth; c.height = v.videoHeight;
            const g = c.getContext('2d'); g.drawImage(v, 0, 0);
            const d = g.getImageData(0, 0, c.width, c.height).data, s = [0, 0, 0];
            for (let i = 0; i < d.length; i += 4) { s[0] += d[i]; s[1] += d[i + 1]; s[2] += d[i + 2]; }
            out[id] = {mean: s.map(x => x / (d.length / 4)), clip: v.dataset.clip};
        }
        return out; })()""")
    by_channel = {channel: job for job, channel in TINTS.items()}
    shown = {}
    for side, c in colours.items():
        channel = max(range(3), key=lambda k: c["mean"][k])
        assert c["mean"][channel] > 200, c  # the tinted channel is 230, the others average about 128
        shown[side] = (by_channel[channel], c["clip"])
    return shown


# what the test's viewer prefers per question (the better of two jobs is the one earlier in the list)
PREFERENCE = {"steadiness": ["alpha", "beta", "gamma"], "style": ["gamma", "beta", "alpha"]}


def _choice(question: str, left: str, right: str) -> str:
    if question not in PREFERENCE:
        return "same"
    order = PREFERENCE[question]
    return "left" if order.index(left) < order.index(right) else "right"


def clips_on_the_page(browser: Browser, key: dict) -> dict:
    """The jobs of the clips the left and right videos hold, by their ids and the key."""
    clips = browser.js("({left: document.getElementById('left').dataset.clip, "
                       "right: document.getElementById('right').dataset.clip})")
    return {side: (key["clips"][clip]["job"], clip) for side, clip in clips.items()}


def click_through(browser: Browser, key: dict, choose, identify=_displayed_jobs) -> list[dict]:
    """Answer every pair of the open A/B page with choose(question, left job, right job), checking that each
    video holds the clip of the job `identify` sees there; returns what was answered, in order."""
    pairs = browser.js("trials.length")
    given = []
    for trial in range(1, pairs + 1):
        assert browser.js("document.getElementById('progress').textContent").startswith(f"Pair {trial} of {pairs}")
        shown = identify(browser, key)
        for side, (job, clip) in shown.items():
            assert key["clips"][clip]["job"] == job, (side, job, clip)  # what is shown is what the CSV records
        for question in ("steadiness", "style", "content"):
            choice = choose(question, shown["left"][0], shown["right"][0])
            browser.click(f"#{question}-{choice}")
            given.append({"trial": str(trial), "question": question, "left": shown["left"][1],
                          "right": shown["right"][1], "choice": choice})
        if trial < pairs:
            browser.click("#next")
    return given


def test_ab_page_click_through_downloads_the_answers_given(tinted_jobs, tmp_path, artefacts):
    from artify.quality.assess import build_assessment, tally

    root, entries = tinted_jobs
    page, key_file = tmp_path / "assess" / "content clip.html", tmp_path / "assess" / "content clip.key.json"
    key = build_assessment(root / "content clip.mp4", {e["job"]: e["video"] for e in entries}, root / "meta.json",
                           page, key_file, clips=2, seconds=1.0)
    with Browser(downloads=tmp_path / "downloads") as browser:
        browser.open(page)
        assert_every_picture_and_video_loads(browser, images=0, videos=3)
        assert_every_video_plays(browser)
        assert not any(job in browser.js("document.documentElement.outerHTML").lower() for job in TINTS)
        browser.screenshot(artefacts / "assess-synthetic.png")
        # a first answer changed before moving on: the later click counts, and the page shows it
        browser.click("#steadiness-same")
        given = click_through(browser, key, _choice)
        assert browser.js("!document.getElementById('done').hidden")
        browser.click("#previous")  # back on pair 5: its answers are shown
        for answer in given[-6:-3]:
            assert answer["trial"] == "5"
            assert browser.js(f"document.querySelector('#{answer['question']}-{answer['choice']}.chosen') !== null")
        browser.click("#download")
        sheet = browser.wait_download()
    assert sheet.name.startswith(f"answers-{key['sheet']}-") and sheet.suffix == ".csv"
    with open(sheet, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * 3 * 3  # 2 stretches x 3 pairs x 3 questions
    assert {r["sheet"] for r in rows} == {key["sheet"]} and len({r["session"] for r in rows}) == 1
    assert [{k: r[k] for k in ("trial", "question", "left", "right", "choice")} for r in rows] == given
    # every pair of jobs on every stretch exactly once
    pairs = {(key["clips"][r["left"]]["start"], frozenset((key["clips"][r["left"]]["job"], key["clips"][r["right"]]["job"])))
             for r in rows}
    assert len(pairs) == 6 and all(len(p[1]) == 2 for p in pairs)
    result = tally([sheet], [key_file])
    rates = {q["name"]: {j["job"]: (j["wins"], j["ties"], j["losses"]) for j in q["jobs"]} for q in result["questions"]}
    assert rates["steadiness"] == {"alpha": (4, 0, 0), "beta": (2, 0, 2), "gamma": (0, 0, 4)}
    assert rates["style"] == {"gamma": (4, 0, 0), "beta": (2, 0, 2), "alpha": (0, 0, 4)}
    assert rates["content"] == {job: (0, 4, 0) for job in TINTS}
    json.dumps(result)
