"""A span's chunks in one process: the same chunks as one process per chunk, resumable chunk by chunk, and
sized so a job's fixed cost is a small share of its work."""

from dataclasses import replace

import cv2
import numpy as np
import pandas as pd
import pytest

from artify.atomic import OWNER_FILE, NotOurFolderError, claim_folder
from artify.media.chunks import plan_chunks, write_chunks
from artify.quality.cost import job_cost
from artify.quality.sizing import LONG_SPAN, SPAN_BYTES, SPREAD_SPANS, auto_span_frames
from artify.settings import Settings
from artify.media.spans import chunk_path, run_span
from artify.stages.flow import flow_chunk, flow_span
from artify.stages.stylize import stylize_span
from artify.stages.stylize import stylize_chunk
from artify.media.video import read_frames, save_frames
from tests.conftest import textured_video

TINY = {"device": "cpu", "iterations": 3, "warm_iterations": 2, "coarse_to_fine": False, "style_size": 32,
        "style_layers": "relu1_1,relu2_1", "content_layers": "relu2_1"}


@pytest.fixture
def span_inputs(tmp_path):
    """One job's inputs as the rules make them: 14 frames in chunks of 5 (+1 overlap), two spans (0: chunks
    0-1; 1: chunk 2), the span folders of frames and flows, a one-style schedule and its keyframe."""
    video = textured_video(14, 40, 32)
    plan = plan_chunks(14, 5, 1, span_frames=10)
    assert [c.span for c in plan] == [0, 0, 1]
    write_chunks(plan, tmp_path / "chunks.tsv")
    for c in plan:
        save_frames(chunk_path(tmp_path / "frames" / f"{c.span:04d}", c.chunk, ".npy"), video[c.read_start: c.stop],
                    c.stop - c.read_start)
    for span in (0, 1):
        flow_span(tmp_path / "frames" / f"{span:04d}", tmp_path / "chunks.tsv", span, tmp_path / "flows" / f"{span:04d}",
                  Settings(), threads=1)
    pd.DataFrame({"frame": range(14), "w0": 1.0}).to_csv(tmp_path / "schedule.tsv", sep="\t", index=False)
    (tmp_path / "kf").mkdir()
    cv2.imwrite(str(tmp_path / "kf" / "k.png"), 255 - video[0])
    pd.DataFrame({"keyframe": [0], "file": ["k.png"]}).to_csv(tmp_path / "keyframes.tsv", sep="\t", index=False)
    return tmp_path


def run_stylize_span(d, span, settings, out="stylized"):
    stylize_span(d / "frames" / f"{span:04d}", d / "chunks.tsv", span, d / "schedule.tsv", d / "keyframes.tsv",
                 d / "kf", d / out / f"{span:04d}", settings, threads=1, flows_dir=d / "flows" / f"{span:04d}",
                 previous_dir=d / out / f"{span - 1:04d}" if span else None)


def test_flow_span_writes_each_chunks_flows_as_flow_chunk_does(span_inputs):
    d = span_inputs
    flow_chunk(chunk_path(d / "frames/0000", 1, ".npy"), d / "alone.npz", Settings(), threads=1)
    with np.load(d / "alone.npz") as alone, np.load(chunk_path(d / "flows/0000", 1, ".npz")) as ours:
        assert alone.files == ours.files and all(np.array_equal(alone[k], ours[k]) for k in alone.files)
    assert sorted(p.name for p in (d / "flows/0000").iterdir()) == [OWNER_FILE, "0000.npz", "0001.npz"]


@pytest.mark.parametrize("chain", [False, True])
def test_a_span_in_one_process_equals_one_process_per_chunk(span_inputs, chain):
    """Every frame of every chunk equal (CPU is deterministic), the chain across the span boundary included."""
    d = span_inputs
    settings = Settings(**TINY, chunk_chain=chain)
    for span in (0, 1):
        run_stylize_span(d, span, settings)
    alone, plan = {}, plan_chunks(14, 5, 1, span_frames=10)
    for c in plan:
        alone[c.chunk] = d / "alone" / f"{c.chunk:04d}.npy"
        stylize_chunk(chunk_path(d / "frames" / f"{c.span:04d}", c.chunk, ".npy"), d / "chunks.tsv", c.chunk,
                      d / "schedule.tsv", d / "keyframes.tsv", d / "kf", alone[c.chunk], settings, threads=1,
                      flows=chunk_path(d / "flows" / f"{c.span:04d}", c.chunk, ".npz"),
                      previous_chunk=alone.get(c.chunk - 1) if chain else None)
    assert sorted(p.name for p in (d / "stylized/0000").iterdir()) == [OWNER_FILE, "0000.npy", "0001.npy"]
    assert sorted(p.name for p in (d / "stylized/0001").iterdir()) == [OWNER_FILE, "0002.npy"]
    for c in plan:
        ours = read_frames(chunk_path(d / "stylized" / f"{c.span:04d}", c.chunk, ".npy"))
        theirs = read_frames(alone[c.chunk])
        assert ours.shape == theirs.shape == (c.stop - c.read_start, 32, 40, 3)
        for t in range(len(ours)):
            assert np.array_equal(ours[t], theirs[t]), (c.chunk, t)
    if chain:  # the chained overlap is the previous chunk's last frame, in its span's folder or the one before
        for c, previous in ((1, "0000"), (2, "0000")):
            assert np.array_equal(read_frames(chunk_path(d / "stylized" / f"{plan[c].span:04d}", c, ".npy"))[0],
                                  read_frames(chunk_path(d / "stylized" / previous, c - 1, ".npy"))[-1])


def test_an_interrupted_span_reuses_its_finished_chunks_and_redoes_the_rest(span_inputs, monkeypatch):
    import artify.stages.stylize

    d = span_inputs
    settings = Settings(**TINY)
    real, made = artify.stages.stylize.stylize_chunk, []

    def dies_on_chunk_1(*args, **kwargs):
        if args[2] == 1:
            raise KeyboardInterrupt  # the job is killed while it stylizes chunk 1
        made.append(args[2])
        return real(*args, **kwargs)

    def counted(*args, **kwargs):
        made.append(args[2])
        return real(*args, **kwargs)

    monkeypatch.setattr(artify.stages.stylize, "stylize_chunk", dies_on_chunk_1)
    with pytest.raises(KeyboardInterrupt):
        run_stylize_span(d, 0, settings)
    assert made == [0] and not (d / "stylized/0000").exists()  # nothing half-done looks finished
    partial = d / "stylized/.0000.partial"
    mtime = chunk_path(partial, 0, ".npy").stat().st_mtime_ns
    (partial / ".tmp.0001.npy").write_bytes(b"half a chunk")  # what a kill inside save_frames leaves

    monkeypatch.setattr(artify.stages.stylize, "stylize_chunk", counted)
    run_stylize_span(d, 0, settings)
    assert made == [0, 1]  # chunk 0 was not made again
    out = d / "stylized/0000"
    assert chunk_path(out, 0, ".npy").stat().st_mtime_ns == mtime and not partial.exists()
    assert sorted(p.name for p in out.iterdir()) == [OWNER_FILE, "0000.npy", "0001.npy"]  # no keys, no temporary files

    # a setting changed while the job was down: the finished chunk's key no longer matches, so it is redone
    monkeypatch.setattr(artify.stages.stylize, "stylize_chunk", dies_on_chunk_1)
    with pytest.raises(KeyboardInterrupt):
        run_stylize_span(d, 0, settings, out="again")
    before = read_frames(chunk_path(d / "again/.0000.partial", 0, ".npy"))
    made.clear()
    monkeypatch.setattr(artify.stages.stylize, "stylize_chunk", counted)
    run_stylize_span(d, 0, replace(settings, style_weight=5000.0), out="again")
    assert made == [0, 1]
    assert not np.array_equal(read_frames(chunk_path(d / "again/0000", 0, ".npy")), before)


def test_run_span_keys_cover_the_inputs_bytes(tmp_path):
    """A chunk whose input file changed (same name) is made again; one whose inputs are equal is reused."""
    plan = plan_chunks(10, 5, 1)
    (tmp_path / "in").mkdir()
    for c in plan:
        (tmp_path / "in" / f"{c.chunk}").write_text(f"input {c.chunk}")
    made = []

    def make(c, partial, path):
        made.append(c.chunk)
        path.write_text((tmp_path / "in" / f"{c.chunk}").read_text().upper())

    from artify.media.spans import key_of

    def key(c, partial):
        return key_of({"setting": 1}, tmp_path / "in" / f"{c.chunk}")

    out = tmp_path / "out"
    partial = tmp_path / ".out.partial"
    partial.mkdir()
    for c in plan:  # both chunks finished by a killed run; chunk 1's input then changed
        make(c, partial, chunk_path(partial, c.chunk, ".txt"))
        chunk_path(partial, c.chunk, ".txt").with_name(f"{c.chunk:04d}.txt.key").write_text(key(c, partial))
    (tmp_path / "in" / "1").write_text("changed")
    made.clear()
    assert run_span(plan, out, ".txt", make, key, "test") == (1, 1)
    assert made == [1] and chunk_path(out, 1, ".txt").read_text() == "CHANGED"
    assert chunk_path(out, 0, ".txt").read_text() == "INPUT 0"


def test_resume_keys_cover_the_bytes_of_every_file_a_setting_names(tmp_path):
    """A weights file or style image replaced in place (same path) changes the key of every stage that reads
    the setting; a URL is keyed by its text (its download by the URL and its checksum setting)."""
    from artify.media.spans import settings_key
    from artify.settings import FILE_SETTINGS, STAGES, _fields

    for name in FILE_SETTINGS:
        stages = [stage for stage in STAGES if name in {f.name for f in _fields(stage)}]
        assert stages, name
        path = tmp_path / f"{name}.bin"
        path.write_bytes(b"the old weights")
        settings = Settings(**{name: str(path)})
        before = {stage: settings_key(settings, stage) for stage in stages}
        path.write_bytes(b"the new weights")  # replaced in place between a kill and the rerun
        assert all(settings_key(settings, stage) != before[stage] for stage in stages), name
    url = Settings(sam_checkpoint="https://example.org/sam.pth")
    assert settings_key(url, "segment_chunk") != settings_key(Settings(), "segment_chunk")


def test_a_span_redoes_its_chunks_when_a_weights_file_was_replaced_in_place(span_inputs, monkeypatch):
    import artify.stages.flow

    d = span_inputs
    weights = d / "raft_small.pth"
    weights.write_bytes(b"the old weights")
    settings = Settings(raft_weights=str(weights))
    real, made = artify.stages.flow.flow_chunk, []

    def killed_on_chunk_1(frames, out, *args):
        if frames.name == "0001.npy":
            raise KeyboardInterrupt
        made.append(frames.name)
        return real(frames, out, *args)

    monkeypatch.setattr(artify.stages.flow, "flow_chunk", killed_on_chunk_1)
    with pytest.raises(KeyboardInterrupt):
        flow_span(d / "frames/0000", d / "chunks.tsv", 0, d / "again", settings, threads=1)
    weights.write_bytes(b"the new weights")
    monkeypatch.setattr(artify.stages.flow, "flow_chunk",
                        lambda frames, out, *a: made.append(frames.name) or real(frames, out, *a))
    made.clear()
    flow_span(d / "frames/0000", d / "chunks.tsv", 0, d / "again", settings, threads=1)
    assert made == ["0000.npy", "0001.npy"]  # chunk 0 was made from the old file: made again


def test_a_span_job_run_by_hand_never_deletes_a_folder_it_did_not_make(span_inputs, capsys):
    """-o naming a user's folder (or another stage's) is refused with one line, before any work; an empty or
    missing folder is used, and the stage's own folder is replaced on a rerun."""
    from artify.cli import main

    d = span_inputs
    videos = d / "Videos"
    videos.mkdir()
    (videos / "holiday.mp4").write_bytes(b"precious")

    def flow_span_to(folder):
        return main(["flow-span", str(d / "frames/0000"), "--chunks", str(d / "chunks.tsv"), "--span", "0",
                     "--threads", "1", "-o", str(folder)])

    assert flow_span_to(videos) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"artify flow-span: error: {videos}: a folder artify flow-span did not make, not empty: left as "
                   f"it is; name a new or empty folder")
    assert sorted(p.name for p in d.iterdir() if "Videos" in p.name) == ["Videos"]  # no partial folder either
    assert [p.name for p in videos.iterdir()] == ["holiday.mp4"]
    assert (videos / "holiday.mp4").read_bytes() == b"precious"
    (videos / "holiday.mp4").rename(d / "holiday.mp4")
    assert flow_span_to(videos) == 0  # empty: used
    assert flow_span_to(videos) == 0  # its own: replaced
    assert flow_span_to(d / "holiday.mp4") == 2 and "holiday.mp4: not a folder" in capsys.readouterr().err
    # another stage's folder is not this one's to replace
    run_stylize_span(d, 0, Settings(**TINY))
    with pytest.raises(NotOurFolderError, match="stylized/0000: a folder artify flow-span did not make"):
        flow_span(d / "frames/0000", d / "chunks.tsv", 0, d / "stylized/0000", Settings(), threads=1)
    assert sorted(p.name for p in (d / "stylized/0000").iterdir()) == [OWNER_FILE, "0000.npy", "0001.npy"]


def test_partial_folders_of_an_older_plans_spans_are_removed_when_the_stage_runs(span_inputs):
    """A killed run of a plan with more spans leaves .NNNN.partial folders no job of the new plan will finish;
    the stage removes its own ones (not another stage's, not a user's, not the current plan's other spans')."""
    d = span_inputs
    old = claim_folder(d / "stylized/.0007.partial", "stylize-span")
    (old / "0140.npy").write_bytes(b"a chunk of span 7 of the older plan")
    claim_folder(d / "stylized/.0008.partial", "flow-span")
    (d / "stylized/.0009.partial").mkdir()
    (d / "stylized/.0009.partial/mine.txt").write_text("not artify's")
    running = claim_folder(d / "stylized/.0001.partial", "stylize-span")  # span 1 of this plan, made in parallel
    run_stylize_span(d, 0, Settings(**TINY))
    assert sorted(p.name for p in (d / "stylized").iterdir()) == [".0001.partial", ".0008.partial", ".0009.partial",
                                                                  "0000"]
    assert running.is_dir()


def test_auto_spans_amortise_the_fixed_cost_and_stay_bounded():
    w, h = 256, 144
    for method in ("gatys", "segmented", "arbitrary"):
        for device in ("cpu", "cuda"):
            fixed, per_frame = job_cost(method, device, w * h)
            for total in (72, 14_400, 172_800):
                span = auto_span_frames(total, 24, method, device, w, h)
                capped = span == SPAN_BYTES // (w * h * 3)
                assert capped or fixed <= 0.1 * span * per_frame, (method, device, total, span)
                assert span * w * h * 3 <= SPAN_BYTES
    # a slow method: a short video spreads over SPREAD_SPANS jobs, a long one has spans of LONG_SPAN frames
    assert auto_span_frames(1440, 24, "gatys", "cpu", w, h) == 1440 // SPREAD_SPANS
    assert auto_span_frames(172_800, 24, "gatys", "cpu", w, h) == LONG_SPAN
    # the same length, 12 or 24 minutes: the same spans, so temporary frames on disk do not grow with it
    assert auto_span_frames(17_280, 24, "gatys", "cpu", w, h) == auto_span_frames(34_560, 24, "gatys", "cpu", w, h)
    # a fast method needs longer spans than a slow one, and longer still on a GPU
    spans = {(m, dev): auto_span_frames(172_800, 24, m, dev, w, h) for m in ("gatys", "arbitrary") for dev in ("cpu", "cuda")}
    assert spans["arbitrary", "cpu"] >= spans["gatys", "cpu"] and spans["arbitrary", "cuda"] > spans["arbitrary", "cpu"]
    assert spans["arbitrary", "cuda"] > LONG_SPAN
    assert auto_span_frames(10, 100, "gatys", "cpu", w, h) == 100  # never less than a chunk


def test_plan_chunks_command_sizes_spans_for_the_method(tmp_path, small_video):
    from artify.media.chunks import read_chunks
    from artify.cli import main

    assert main(["probe", str(small_video), "-o", str(tmp_path / "meta.json")]) == 0
    sizes = {}
    for method in ("gatys", "arbitrary"):
        out = tmp_path / f"{method}.tsv"
        assert main(["plan-chunks", "--meta", str(tmp_path / "meta.json"), "-o", str(out), "--chunk-frames", "4",
                     "--chunk-overlap", "1", "--method", method, "--device", "cpu"]) == 0
        sizes[method] = read_chunks(out)[-1].span + 1
    assert sizes["gatys"] > sizes["arbitrary"] == 1  # 24 frames: a fast method's one job does them all
    assert main(["plan-chunks", "--meta", str(tmp_path / "meta.json"), "-o", str(tmp_path / "fixed.tsv"),
                 "--chunk-frames", "4", "--chunk-overlap", "1", "--span-frames", "9", "--method", "arbitrary"]) == 0
    assert [c.span for c in read_chunks(tmp_path / "fixed.tsv")] == [0, 0, 1, 1, 2, 2]  # an explicit span_frames wins
