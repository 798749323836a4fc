"""Chunk plans and their assembly: every frame once, overlaps cross-faded, exact counts."""

import numpy as np
import pytest

from artify.media.assemble import assembled_frames, blend_overlap
from artify.media.chunks import plan_chunks, read_chunks, write_chunks


@pytest.mark.parametrize("n,size,overlap,max_frames", [(240, 24, 4, 0), (10, 4, 1, 0), (100, 24, 4, 50), (5, 24, 4, 0),
                                                        (26, 24, 4, 0)])
def test_cores_tile_the_frames_exactly_once(n, size, overlap, max_frames):
    plan = plan_chunks(n, size, overlap, max_frames)
    total = min(n, max_frames) if max_frames else n
    covered = np.concatenate([np.arange(r.start, r.stop) for r in plan])
    assert np.array_equal(covered, np.arange(total))
    assert all(r.read_start == max(0, r.start - overlap) for r in plan)
    assert all(r.stop - r.start > overlap for r in plan) or len(plan) == 1


def span_ranges(plan):
    """span -> (first frame decoded, one past the last)."""
    spans = {}
    for c in plan:
        first, _ = spans.get(c.span, (c.read_start, c.stop))
        spans[c.span] = (first, c.stop)
    return spans


@pytest.mark.parametrize("keyframes", [None, [0], list(range(0, 5000, 250)), list(range(5000)), [0, 37, 700, 1900]])
@pytest.mark.parametrize("span_frames", [None, 100, 480])
def test_spans_are_bounded_consecutive_and_start_near_keyframes(keyframes, span_frames):
    plan = plan_chunks(5000, 24, 4, span_frames=span_frames, keyframes=keyframes)
    spans = span_ranges(plan)
    assert [c.span for c in plan] == sorted(c.span for c in plan)  # each span is a run of chunks
    assert list(spans) == list(range(len(spans)))
    for first, stop in spans.values():
        assert stop - first <= (span_frames or 5000)
    if span_frames is None:
        assert len(spans) == 1
    if keyframes == list(range(0, 5000, 250)) and span_frames == 480:
        # every span but the first starts less than a chunk after a keyframe: little decoding thrown away
        assert all(0 <= first % 250 < 24 for first, _ in list(spans.values())[1:]), spans
        assert all(stop - first >= 240 for first, stop in list(spans.values())[:-1])


def test_chunk_plan_round_trips(tmp_path):
    plan = plan_chunks(100, 24, 4, span_frames=50)
    write_chunks(plan, tmp_path / "chunks.tsv")
    assert read_chunks(tmp_path / "chunks.tsv") == plan
    (tmp_path / "bad.tsv").write_text("a\tb\n1\t2\n")
    with pytest.raises(ValueError, match="bad.tsv: not a chunk plan"):
        read_chunks(tmp_path / "bad.tsv")


def test_bad_plans_are_refused():
    with pytest.raises(ValueError, match="chunk_overlap"):
        plan_chunks(100, 4, 4)
    with pytest.raises(ValueError, match="no frames"):
        plan_chunks(0, 4, 1)


def test_a_span_size_of_zero_is_refused_not_read_as_one_span():
    """The setting's `span_frames: 0` means "sized for the method"; the planner takes the size that came of
    it, so a 0 that reached it unresolved is an error, not a video in one span (its meaning here once)."""
    with pytest.raises(ValueError, match="span_frames 0: a span needs a number of frames"):
        plan_chunks(5000, 24, 4, span_frames=0)
    assert {c.span for c in plan_chunks(5000, 24, 4)} == {0}  # no size: one span


def test_blend_is_a_monotone_cross_fade():
    a, b = np.zeros((3, 2, 2, 3), np.uint8), np.full((3, 2, 2, 3), 200, np.uint8)
    mixed = blend_overlap(a, b)[:, 0, 0, 0]
    assert list(mixed) == sorted(mixed) and 0 < mixed[0] < mixed[-1] < 200


def test_assembly_gives_each_frame_once_and_blends_the_overlap(tmp_path):
    """Chunk i's pixels are all i*50 (their frame's index is irrelevant): the output shows where each came from."""
    plan = plan_chunks(20, chunk_frames=8, chunk_overlap=2)
    write_chunks(plan, tmp_path / "chunks.tsv")
    paths = []
    for r in plan:
        path = tmp_path / f"s{r.chunk}.npy"
        np.save(path, np.full((r.stop - r.read_start, 4, 4, 3), r.chunk * 50, np.uint8))
        paths.append(path)
    out = np.stack(list(assembled_frames(tmp_path / "chunks.tsv", paths)))[:, 0, 0, 0]
    assert len(out) == 20
    assert list(out[:6]) == [0] * 6 and list(out[8:14]) == [50] * 6 and list(out[16:]) == [100] * 4
    assert 0 < out[6] < out[7] < 50 and 50 < out[14] < out[15] < 100  # the two overlap frames blend


def test_assembly_refuses_a_short_chunk(tmp_path):
    from artify.media.video import MediaError

    plan = plan_chunks(10, 5, 1)
    write_chunks(plan, tmp_path / "chunks.tsv")
    paths = [tmp_path / f"s{i}.npy" for i in range(2)]
    np.save(paths[0], np.zeros((5, 4, 4, 3), np.uint8))
    np.save(paths[1], np.zeros((3, 4, 4, 3), np.uint8))
    with pytest.raises(MediaError, match="s1.npy: has 3 frames, chunk 1 needs 6"):
        list(assembled_frames(tmp_path / "chunks.tsv", paths))


def test_assembly_names_a_missing_or_broken_chunk(tmp_path):
    from artify.media.video import MediaError

    plan = plan_chunks(10, 5, 1)
    write_chunks(plan, tmp_path / "chunks.tsv")
    paths = [tmp_path / f"s{i}.npy" for i in range(2)]
    np.save(paths[0], np.zeros((5, 4, 4, 3), np.uint8))
    with pytest.raises(MediaError, match="s1.npy: no such file"):
        list(assembled_frames(tmp_path / "chunks.tsv", paths))
    paths[1].write_bytes(b"half a chunk")
    with pytest.raises(MediaError, match="s1.npy: not a stylized chunk"):
        list(assembled_frames(tmp_path / "chunks.tsv", paths))


def test_a_span_folder_gives_assemble_its_chunks_in_chunk_order_past_9999_and_99999(tmp_path, monkeypatch):
    """Chunk files are named by number, padded to four digits only: by name, 10000.npy would come before 9999.npy
    (a film of over 2 h at 30 fps) and the film would be assembled out of order."""
    import artify.stages.video
    from artify.cli import main
    from artify.media.chunks import chunk_frames_path

    numbers = [9998, 9999, 10000, 10001, 99998, 99999, 100000, 100001]
    folder = tmp_path / "0000"
    for n in numbers:
        chunk_frames_path(folder, n).parent.mkdir(exist_ok=True)
        chunk_frames_path(folder, n).write_bytes(b"")
    for other in (".tmp.0003.npy", "0003.npy.key", ".artify-stage", "notes.npy"):  # not chunk files
        (folder / other).write_bytes(b"")
    given = []
    monkeypatch.setattr(artify.stages.video, "assemble",
                        lambda meta, chunks, files, *a, **k: given.extend(files) or 0)
    assert main(["assemble", str(folder), "--meta", "m.json", "--chunks", "c.tsv", "-o", str(tmp_path / "o.mp4")]) == 0
    assert [p.name for p in given] == [chunk_frames_path(folder, n).name for n in numbers]


def test_assembly_refuses_chunk_files_out_of_order(tmp_path):
    """Interior chunks all have one length, so a file given in another chunk's place is told by its name."""
    from artify.media.video import MediaError
    from artify.media.chunks import chunk_frames_path

    plan = plan_chunks(15, 5, 1)
    write_chunks(plan, tmp_path / "chunks.tsv")
    for c in plan:
        np.save(chunk_frames_path(tmp_path, c.chunk), np.zeros((c.stop - c.read_start, 4, 4, 3), np.uint8))
    swapped = [chunk_frames_path(tmp_path, n) for n in (0, 2, 1)]
    with pytest.raises(MediaError, match="0002.npy: is chunk 2's file, given where the plan has chunk 1"):
        list(assembled_frames(tmp_path / "chunks.tsv", swapped))
    assert len(list(assembled_frames(tmp_path / "chunks.tsv", sorted(swapped)))) == 15


def test_extraction_run_by_hand_never_deletes_a_folder_it_did_not_make(tmp_path, small_video, capsys):
    """-o naming a user's folder is refused with one line before decoding; an empty one is used, the stage's own
    replaced; what a killed extraction of an older plan's span left (.tmp.NNNN) goes when the stage next runs."""
    from artify.atomic import OWNER_FILE, claim_folder
    from artify.cli import main

    assert main(["probe", str(small_video), "-o", str(tmp_path / "meta.json")]) == 0
    assert main(["plan-chunks", "--meta", str(tmp_path / "meta.json"), "--chunk-frames", "8", "--chunk-overlap",
                 "2", "--span-frames", "12", "-o", str(tmp_path / "chunks.tsv")]) == 0
    videos = tmp_path / "Videos"
    videos.mkdir()
    (videos / "holiday.mp4").write_bytes(b"precious")

    def extract_to(folder):
        return main(["extract-frames", str(small_video), "--meta", str(tmp_path / "meta.json"), "--chunks",
                     str(tmp_path / "chunks.tsv"), "--span", "0", "--size", "32", "-o", str(folder)])

    capsys.readouterr()
    assert extract_to(videos) == 2
    assert capsys.readouterr().err.strip() == (f"artify extract-frames: error: {videos}: a folder artify "
                                               f"extract-frames did not make, not empty: left as it is; name a "
                                               f"new or empty folder")
    assert [p.name for p in videos.iterdir()] == ["holiday.mp4"]
    assert (videos / "holiday.mp4").read_bytes() == b"precious"
    (videos / "holiday.mp4").unlink()
    older = claim_folder(videos.with_name(".tmp.0009"), "extract-frames")  # span 9 of an older plan, killed
    (older / "0020.npy").write_bytes(b"frames")
    theirs = videos.with_name(".tmp.0010")
    theirs.mkdir()
    assert extract_to(videos) == 0 and extract_to(videos) == 0  # empty: used; its own: replaced
    assert sorted(p.name for p in videos.iterdir()) == [OWNER_FILE, "0000.npy"]
    assert not older.exists() and theirs.is_dir()
