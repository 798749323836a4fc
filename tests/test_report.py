"""Material for people (side-by-side, contact sheet, plots), the comparison table, the deflicker baseline,
stage times from benchmark files, and the warping-error mask on a moving square."""
from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from artify.media.video import probe, read_frames, write_frames_h264
from tests.conftest import textured_video

FPS = Fraction(24)


@pytest.fixture
def job_dir(tmp_path, small_video):
    """A finished job's files: content (24 frames 96x64, audio), a stand-in stylized video (the colours
    inverted), meta.json, a schedule cross-fading from style 0 to style 1, and two keyframes."""
    from artify.style.schedule import weights_table

    content = small_video
    probe(content).save(tmp_path / "meta.json")
    frames = read_frames(content)
    write_frames_h264(tmp_path / "stylized.mp4", 255 - frames, FPS, crf=18, audio=content, audio_copy=True,
                      duration=Fraction(len(frames), 24))
    t = np.clip((np.arange(24) - 8) / 8, 0, 1)
    weights_table(np.stack([1 - t, t], 1)).to_csv(tmp_path / "schedule.tsv", sep="\t", index=False)
    kdir = tmp_path / "keyframes"
    kdir.mkdir()
    Image.new("RGB", (80, 40), (255, 0, 0)).save(kdir / "keyframe_000.png")
    Image.new("RGB", (30, 60), (0, 0, 255)).save(kdir / "keyframe_001.png")
    pd.DataFrame({"keyframe": [0, 1], "file": ["keyframe_000.png", "keyframe_001.png"]}).to_csv(
        tmp_path / "keyframes.tsv", sep="\t", index=False)
    return tmp_path, content


# --------------------------------------------------------------------------------------------- side by side

def test_side_by_side_has_every_frame_three_panels_and_the_weight_bar(job_dir):
    from artify.quality.report import PALETTE, _rgb, bar_height, side_by_side

    d, content = job_dir
    n = side_by_side(content, d / "stylized.mp4", d / "meta.json", d / "schedule.tsv", d / "keyframes.tsv",
                     d / "keyframes", d / "sbs.mp4")
    meta = probe(d / "sbs.mp4")
    bar = bar_height(64)
    assert n == meta.frames == 24 and (meta.width, meta.height) == (3 * 96, 64 + bar)
    assert meta.fps == "24/1" and meta.audio
    video = read_frames(d / "sbs.mp4").astype(int)
    src = read_frames(content).astype(int)
    # middle panel is the output (inverted input), left the input (below the label)
    assert np.abs(video[5, 30:64, 10:96] - src[5, 30:, 10:]).mean() < 12
    assert np.abs(video[5, 30:64, 96 + 10:192] - (255 - src[5, 30:, 10:])).mean() < 12
    # right panel: red keyframe first, blue at the end, letterboxed; bar all style 0, then all style 1
    red, blue = video[0, 32, 2 * 96 + 48], video[-1, 32, 2 * 96 + 48]
    assert red[0] > 200 and red[2] < 60 and blue[2] > 200 and blue[0] < 60
    assert np.abs(video[0, 64 + bar // 2, 5:-5] - _rgb(PALETTE[0])).max() < 40
    assert np.abs(video[-1, 64 + bar // 2, 5:-5] - _rgb(PALETTE[1])).max() < 40
    # mid-fade (frame 12: weights 0.5 / 0.5): half the bar each
    mid = video[12, 64 + bar // 2]
    assert np.abs(mid[20] - _rgb(PALETTE[0])).max() < 40 and np.abs(mid[-20] - _rgb(PALETTE[1])).max() < 40


def test_weight_bar_segments_follow_the_weights():
    from artify.quality.report import PALETTE, _rgb, weight_bar

    bar = weight_bar(np.array([0.25, 0.0, 0.75]), 100, 6)
    assert bar.shape == (6, 100, 3)
    assert (bar[:, :25] == _rgb(PALETTE[0])).all() and (bar[:, 25:] == _rgb(PALETTE[2])).all()


# -------------------------------------------------------------------------------------- contact sheet, plots

def test_contact_sheet_is_a_png_of_the_expected_size(job_dir):
    from artify.quality.report import video_contact_sheet

    d, content = job_dir
    size = video_contact_sheet(content, d / "stylized.mp4", d / "meta.json", d / "sheet.png", frames=6, columns=4)
    with Image.open(d / "sheet.png") as img:
        assert img.format == "PNG" and img.size == size
        # 6 frames in 4 columns: 2 rows of cells, each 96 wide and input + output (2 x 64) + caption high
        assert size == (4 * (96 + 4) + 4, 2 * (2 * 64 + 16 + 4) + 4)
        sheet = np.asarray(img.convert("RGB")).astype(int)
    # the last cell (frame 23) shows input above output: frame i carries i*10 in its top-left block
    x, y = 4 + 1 * (96 + 4), 4 + 1 * (2 * 64 + 16 + 4) + 16
    assert abs(sheet[y + 3, x + 3].mean() - 230) < 20 and abs(sheet[y + 64 + 3, x + 3].mean() - 25) < 20


def test_per_frame_plot_is_a_png(job_dir, tmp_path):
    from artify.quality.report import plot_per_frame

    d, _ = job_dir
    n = 24
    rng = np.random.default_rng(0)
    tables = {}
    for label, scale in (("job", 0.01), ("per-frame baseline", 0.05)):
        t = pd.DataFrame({"frame": np.arange(n), "warp_error_short": np.r_[np.nan, rng.uniform(0.5, 1, n - 1) * scale],
                          "warp_error_input_short": np.r_[np.nan, np.full(n - 1, 0.002)],
                          "style_distance": rng.uniform(0.1, 0.2, n), "style_distance_input": np.full(n, 0.6)})
        tables[label] = tmp_path / f"{label}.tsv"
        t.to_csv(tables[label], sep="\t", index=False)
    plot_per_frame(tables, d / "schedule.tsv", "24/1", tmp_path / "plot.png")
    with Image.open(tmp_path / "plot.png") as img:
        assert img.format == "PNG" and img.size == (900, 700)


def test_per_frame_plot_draws_a_sampled_style_distance_as_points_and_warping_error_on_every_frame(
        job_dir, tmp_path, monkeypatch):
    import artify.figures
    from artify.quality.report import plot_per_frame

    d, _ = job_dir
    n, sampled = 24, [0, 8, 15, 23]
    style = np.full(n, np.nan)
    style[sampled] = [0.1, 0.2, 0.15, 0.12]
    t = pd.DataFrame({"frame": np.arange(n), "warp_error_short": np.r_[np.nan, np.linspace(0.01, 0.02, n - 1)],
                      "warp_error_input_short": np.r_[np.nan, np.full(n - 1, 0.002)],
                      "style_distance": style, "style_distance_input": np.where(np.isnan(style), np.nan, 0.6)})
    t.to_csv(tmp_path / "job.tsv", sep="\t", index=False)
    figures = []
    monkeypatch.setattr(artify.figures, "save_figure", lambda fig, out: figures.append(fig))
    plot_per_frame({"job": tmp_path / "job.tsv"}, d / "schedule.tsv", "24/1", tmp_path / "plot.png")
    ax_w, ax_s, _ = figures[0].axes[:3]
    job_warp = next(line for line in ax_w.get_lines() if line.get_label() == "job")
    assert len(job_warp.get_xdata()) == n and job_warp.get_linestyle() == "-"  # every frame's warping error
    points = {line.get_label(): line for line in ax_s.get_lines()}
    assert set(points) == {"job (4 of 24 frames)", "input (4 of 24 frames)"}
    for line in points.values():  # drawn where measured, as points: no line through unmeasured frames
        assert line.get_linestyle() == "None" and line.get_marker() == "o"
        assert np.allclose(line.get_xdata(), np.array(sampled) / 24)


def test_comparison_says_where_the_figures_were_measured_and_warns_when_jobs_differ(tmp_path):
    from artify.quality.compare import compare

    def measured(size, frames, of):
        return {key: {"size": size, "frames": of if key.startswith(("warp", "flicker", "ssim")) else frames,
                      "of": of}
                for key in ("warp_error", "warp_error_input", "flicker", "flicker_input", "ssim", "style_distance",
                            "style_distance_input", "content_distance")}

    a = _metrics(0.01, 0.002, 0.2, 3.0) | {"measured_on": measured([512, 288], 64, 720)}
    b = _metrics(0.02, 0.004, 0.1, 6.0) | {"measured_on": measured([512, 288], 64, 720)}
    compare([{"job": "a", "kind": "result", "metrics": a}, {"job": "b", "kind": "result", "metrics": b}],
            tmp_path / "c.md", tmp_path / "c.html")
    note = ("Every job was measured at 512×288: warping error, flicker and SSIM on every frame (720), style and "
            "content distance on 64 evenly spaced frames of 720.")
    assert note in (tmp_path / "c.md").read_text() and note in (tmp_path / "c.html").read_text()
    b["measured_on"] = measured([1280, 720], 720, 720)
    compare([{"job": "a", "kind": "result", "metrics": a}, {"job": "b", "kind": "result", "metrics": b}],
            tmp_path / "c.md", tmp_path / "c.html")
    md = (tmp_path / "c.md").read_text()
    assert "Jobs measured differently do not compare" in md and "b measured at 1280×720" in md


# ----------------------------------------------------------------------------------------------- deflicker

def test_deflicker_keeps_every_frame_and_audio_and_reduces_flicker(tmp_path, small_video):
    from artify.quality.baselines import deflicker_video
    from artify.quality.evaluate import flicker

    frames = np.repeat(textured_video(1)[:1], 24, axis=0)  # a still picture whose brightness flickers
    gain = np.where(np.arange(len(frames)) % 2, 1.25, 0.8)[:, None, None, None]
    flickering = np.clip(frames * gain, 0, 255).astype(np.uint8)
    src = tmp_path / "flickering.mp4"
    write_frames_h264(src, flickering, FPS, crf=10, audio=small_video, duration=Fraction(1))
    assert deflicker_video(src, tmp_path / "out.mp4", size=5, mode="am", crf=10) == 24
    meta = probe(tmp_path / "out.mp4")
    assert meta.frames == 24 and meta.audio and meta.fps == "24/1"
    before = flicker(read_frames(src), frames)[0]
    after = flicker(read_frames(tmp_path / "out.mp4"), frames)[0]
    assert after < 0.6 * before, (before, after)


# ---------------------------------------------------------------------------------------------- stage times

def _bench(path, s, rss):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
                    f"{s}\t0:00:01\t{rss}\t100\t1\t1\t0\t0\t50\t1\n")


def test_stage_times_sum_chunks_divide_by_frames_and_take_peak_memory(tmp_path):
    from artify.quality.cost import cost_metrics, stage_times

    b = tmp_path / "benchmarks"
    _bench(b / "probe" / "j.tsv", 1.0, "-")  # too short to be sampled
    _bench(b / "stylize_chunk" / "j_0000.tsv", 10.0, 900.5)
    _bench(b / "stylize_chunk" / "j_0001.tsv", 14.0, 1200.0)
    t = stage_times(sorted(b.rglob("*.tsv")), frames=12, out_tsv=tmp_path / "st.tsv")
    t = t.set_index("stage")
    assert t.loc["stylize_chunk", "jobs"] == 2 and t.loc["stylize_chunk", "seconds_per_frame"] == pytest.approx(2.0)
    assert t.loc["stylize_chunk", "max_rss_mb"] == 1200.0 and np.isnan(t.loc["probe", "max_rss_mb"])
    m = cost_metrics(pd.read_csv(tmp_path / "st.tsv", sep="\t"))
    assert m["seconds_per_frame"] == pytest.approx(25 / 12) and m["peak_memory_mb"] == 1200.0
    assert m["stages"]["probe"]["max_rss_mb"] is None and m["stages"]["probe"]["seconds_per_frame"] == pytest.approx(1 / 12)
    json.dumps(m)
    with pytest.raises(ValueError):
        stage_times([b / "probe" / "j.tsv"], frames=0)


def _run_benchmarks(root, jobs, spans, deflickered, trained):
    """The benchmarks folder a pipeline run over these jobs leaves: every rule's files, cost or not."""
    per_job = ["probe", "detect_cuts", "plan_chunks", "detect_scenes", "select_keyframes", "plan_schedule",
               "assemble", "evaluate", "stage_times", "side_by_side", "contact_sheet", "plot_per_frame"]
    for job, settings in jobs.items():
        for rule in per_job:
            _bench(root / rule / f"{job}.tsv", 1.0, 100)
        for span in spans[job]:
            for rule in ["extract_frames", "stylize_chunk"] + ["flow_chunk"] * settings["temporal"] + (
                    ["segment_chunk"] if settings["method"] == "segmented" else []):
                _bench(root / rule / f"{job}_{span:04d}.tsv", 2.0, 200)
    for job in trained:
        _bench(root / "train_arbitrary" / f"{job}.tsv", 50.0, 3000)
    for job in deflickered:
        _bench(root / "deflicker" / f"{job}.tsv", 3.0, 300)
        _bench(root / "evaluate" / f"{job}.tsv", 1.0, 100)
    _bench(root / "compare" / "clip.tsv", 1.0, 100)


def test_a_jobs_benchmark_files_are_those_of_the_stages_that_made_its_video(tmp_path, monkeypatch):
    from artify.quality.baselines import add_baselines
    from artify.quality.cost import stage_times
    from artify.quality.stage_files import benchmark_files
    from artify.settings import defaults

    jobs = {"a": defaults() | {"job": "a", "content": "clip.mp4", "style": "s.mp4", "baselines": True},
            "seg": defaults() | {"job": "seg", "content": "clip.mp4", "style": "s.mp4", "method": "segmented"},
            "ada": defaults() | {"job": "ada", "content": "clip.mp4", "style": "s.mp4", "method": "arbitrary",
                                 "arbitrary_network": "adain", "baselines": True}}
    jobs, baselines, deflickered = add_baselines(jobs)
    spans = {"a": [0, 1], "a.perframe": [0, 1], "seg": [0], "ada": [0, 1, 2], "ada.perframe": [0, 1, 2]}
    trained_as = {"ada.perframe": "ada"}.get
    monkeypatch.chdir(tmp_path)
    _run_benchmarks(tmp_path / "benchmarks", jobs, spans, deflickered, trained=["ada"])

    def files(job):
        found = benchmark_files(job, jobs, deflickered, spans.__getitem__, lambda j: trained_as(j, j))
        assert all(Path(f).is_file() for f in found), found  # only files the run made
        return found

    once = ["probe", "detect_cuts", "plan_chunks", "detect_scenes", "select_keyframes", "plan_schedule", "assemble"]
    assert files("a") == ([f"benchmarks/{r}/a.tsv" for r in once]
                          + [f"benchmarks/{r}/a_{s:04d}.tsv" for r in ("extract_frames", "flow_chunk", "stylize_chunk")
                             for s in (0, 1)])
    # per-frame baseline: no flows; its deflicker baseline: those files and the deflicker run
    assert files("a.perframe") == ([f"benchmarks/{r}/a.perframe.tsv" for r in once]
                                   + [f"benchmarks/{r}/a.perframe_{s:04d}.tsv"
                                      for r in ("extract_frames", "stylize_chunk") for s in (0, 1)])
    assert files("a.deflicker") == files("a.perframe") + ["benchmarks/deflicker/a.deflicker.tsv"]
    assert "benchmarks/segment_chunk/seg_0000.tsv" in files("seg") and len(files("seg")) == 7 + 4
    # a trained decoder counts for the job and for its per-frame baseline, which shares it
    assert files("ada")[7] == files("ada.perframe")[7] == "benchmarks/train_arbitrary/ada.tsv"
    assert "benchmarks/train_arbitrary" not in " ".join(files("a") + files("seg"))
    table = stage_times(files("ada"), frames=30).set_index("stage")
    assert table["jobs"].to_dict() == {**dict.fromkeys(once, 1), "train_arbitrary": 1, "extract_frames": 3,
                                       "flow_chunk": 3, "stylize_chunk": 3}
    assert table.loc["train_arbitrary", "seconds"] == 50.0 and table.loc["stylize_chunk", "seconds"] == 6.0


# ----------------------------------------------------------------------------------------------- comparison

def _metrics(warp, flick, style, sec):
    return {"warp_error": {"short": warp, "long": 2 * warp}, "warp_error_input": {"short": 0.001, "long": 0.004},
            "flicker": flick, "flicker_input": 0.0005, "style_distance": style, "style_distance_input": 0.9,
            "content_distance": 0.5, "ssim": 0.4, "seconds_per_frame": sec, "peak_memory_mb": 1000.0}


def test_comparison_table_has_the_ratios_to_both_baselines(tmp_path):
    from artify.quality.compare import compare

    (tmp_path / "ours.json").write_text(json.dumps(_metrics(0.01, 0.002, 0.2, 3.0)))
    entries = [
        {"job": "ours", "kind": "result", "metrics": str(tmp_path / "ours.json"), "perframe": "ours.perframe",
         "deflicker": "ours.deflicker", "settings": "gatys"},
        {"job": "other", "kind": "result", "metrics": _metrics(0.02, 0.004, 0.1, 6.0), "settings": "gatys; style_weight=500"},
        {"job": "ours.perframe", "kind": "per-frame", "metrics": _metrics(0.04, 0.008, 0.25, 2.0)},
        {"job": "ours.deflicker", "kind": "deflicker", "metrics": _metrics(0.02, 0.004, 0.25, 2.5)},
    ]
    c = compare(entries, tmp_path / "c.md", tmp_path / "c.html", title="Comparison on clip.mp4")
    ratios = {(r["job"], r["baseline_kind"]): r["values"] for r in c["ratios"]}
    assert set(ratios) == {("ours", "per-frame"), ("ours", "deflicker"), ("other", "per-frame"), ("other", "deflicker")}
    assert ratios["ours", "per-frame"]["warp_error.short"] == pytest.approx(0.25)
    assert ratios["ours", "deflicker"]["flicker"] == pytest.approx(0.5)
    assert ratios["other", "per-frame"]["style_distance"] == pytest.approx(0.4)  # the table's baselines
    assert ratios["ours", "per-frame"]["seconds_per_frame"] == pytest.approx(1.5)
    assert c["input"]["warp_error.short"] == 0.001
    md = (tmp_path / "c.md").read_text()
    assert "| ours | ours.perframe | per-frame | 0.250 | 0.250 | 0.250 | 0.800 |" in md
    assert "| input | floor |" in md and "style_weight=500" in md
    page = (tmp_path / "c.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "<td>0.250</td>" in page and "Comparison on clip.mp4" in page


def test_comparison_without_baselines_says_so(tmp_path):
    from artify.quality.compare import compare

    c = compare([{"job": "a", "kind": "result", "metrics": _metrics(0.01, 0.002, 0.2, 3.0)}], tmp_path / "a.md",
                tmp_path / "a.html")
    assert c["ratios"] == [] and "No baselines" in (tmp_path / "a.md").read_text()


def test_baseline_jobs_and_comparison_groups():
    from artify.quality.baselines import add_baselines, comparison_groups
    from artify.config import ConfigError

    jobs = {"a": {"content": "v/clip.mp4", "temporal": True, "baselines": True, "style_weight": 50.0},
            "b": {"content": "./v/clip.mp4", "temporal": True, "baselines": False, "style_weight": 500.0},
            "c": {"content": "w/clip.mp4", "temporal": False, "baselines": True}}
    out, baselines, deflickered = add_baselines(jobs)
    assert out["a.perframe"] == dict(jobs["a"], temporal=False, baselines=False)
    assert "c.perframe" not in out  # c is per-frame already: its own baseline
    assert baselines == {"a": {"perframe": "a.perframe", "deflicker": "a.deflicker"},
                         "c": {"perframe": "c", "deflicker": "c.deflicker"}}
    assert deflickered == {"a.deflicker": "a.perframe", "c.deflicker": "c"}
    groups = comparison_groups(out, deflickered)
    assert groups == {"clip": ["a", "b", "a.perframe", "a.deflicker"], "clip-2": ["c", "c.deflicker"]}
    with pytest.raises(ConfigError, match="reserved"):
        add_baselines({"x.perframe": {"baselines": False}})


# ------------------------------------------------------------------------------- warping-error mask (Check)

def test_warping_mask_marks_the_strips_a_moving_square_hides_and_reveals():
    """A textured square moves 4 px right over a static background. The reliable-pixel mask of frame t
    must exclude the background strip the square covers in t+1; for the pair taken the other way (t+1 -> t)
    it must exclude the strip the square uncovered; the square's inside and the far background stay."""
    from artify.quality.evaluate import compute_flows, warping_error
    from tests.test_evaluate import moving_square_video

    video = moving_square_video(n=2, size=24, shift=4)  # square at x 50..74 in frame 0, 54..78 in frame 1
    (_, covered), = compute_flows(video, 1)
    assert covered[32:52, 74:78].max() == 0  # hidden by the square in frame 1
    assert covered[34:50, 54:70].min() == 1 and covered[:20].min() == 1 and covered[:, :40].min() == 1
    (_, revealed), = compute_flows(video[::-1], 1)
    assert revealed[32:52, 50:54].max() == 0  # background uncovered in frame 1 (the disoccluded strip)
    assert revealed[34:50, 58:74].min() == 1 and revealed[:20].min() == 1
    # with those pixels left out, the input itself warps exactly: zero error away from the square's edges
    assert warping_error(video, video)[0] < 1e-4


def test_comparison_entries_describe_each_job_against_the_first_with_its_baselines_and_files():
    from artify.quality.baselines import add_baselines, comparison_groups
    from artify.quality.compare import comparison_entries
    from artify.settings import defaults

    jobs = {"a": defaults() | {"job": "a", "content": "v/clip.mp4", "style": "s.mp4", "baselines": True},
            "b": defaults() | {"job": "b", "content": "v/clip.mp4", "style": "t.mp4", "style_weight": 500.0,
                               "method": "arbitrary"}}
    jobs, baselines, deflickered = add_baselines(jobs)
    members = comparison_groups(jobs, deflickered)["clip"]
    assert members == ["a", "b", "a.perframe", "a.deflicker"]
    entries = comparison_entries(members, jobs, baselines, deflickered)
    assert [e["job"] for e in entries] == members
    a, b, perframe, deflicker = entries

    def files(job):
        return {"path": f"results/{job}/metrics.json", "video": f"results/{job}/stylized.mp4",
                "per_frame": f"results/{job}/per-frame.tsv", "plot": f"results/{job}/per-frame.png",
                "side_by_side": f"results/{job}/side_by_side.mp4"}

    assert a == {"job": "a", "kind": "result", "settings": "gatys", "perframe": "a.perframe",
                 "deflicker": "a.deflicker", **files("a")}
    # the style differs too, but content and style paths are not settings
    assert b == {"job": "b", "kind": "result", "settings": "arbitrary; method=arbitrary, style_weight=500.0",
                 **files("b")}
    assert perframe == {"job": "a.perframe", "kind": "per-frame", "settings": "gatys; temporal=False",
                        **files("a.perframe")}
    assert deflicker == {"job": "a.deflicker", "kind": "deflicker",
                         "settings": "gatys; temporal=False; deflicker size=5 mode=am", **files("a.deflicker")}
    json.dumps(entries)  # the rule passes them to `artify compare --entries` as JSON


def test_report_stages_are_subcommands_and_compare_runs_from_the_command_line(tmp_path):
    import subprocess
    import sys

    from tests.conftest import REPO

    def artify(*args):
        return subprocess.run([sys.executable, "-m", "artify", *map(str, args)], capture_output=True, text=True,
                              cwd=REPO)

    out = artify("--help").stdout
    for stage in ("stage-times", "deflicker", "side-by-side", "contact-sheet", "plot-per-frame", "compare", "assess"):
        assert stage in out
    (tmp_path / "a.json").write_text(json.dumps(_metrics(0.01, 0.002, 0.2, 3.0)))
    (tmp_path / "b.json").write_text(json.dumps(_metrics(0.04, 0.008, 0.25, 2.0)))
    entries = [{"job": "a", "kind": "result", "path": str(tmp_path / "a.json"), "perframe": "b"},
               {"job": "b", "kind": "per-frame", "path": str(tmp_path / "b.json")}]
    proc = artify("compare", "--entries", json.dumps(entries), "--markdown", tmp_path / "c.md", "--html",
                  tmp_path / "c.html")
    assert proc.returncode == 0, proc.stderr
    assert "| a | b | per-frame | 0.250 |" in (tmp_path / "c.md").read_text()
