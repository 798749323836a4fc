"""ffmpeg IO: probing without ffprobe, exact frame access, lossless round trips, clear errors."""
from fractions import Fraction

import numpy as np
import pytest

from artify.media.chunks import chunk_frames_path, extract_frames, plan_chunks, write_chunks
from artify.media.video import MediaError, probe, processing_size, read_frames, save_frames, write_frames_lossless
from tests.conftest import textured_video


def test_probe_real_clip(bunny_clip):
    meta = probe(bunny_clip)
    assert (meta.fps, meta.width, meta.height, meta.frames) == ("24/1", 640, 360, 240)
    assert meta.audio and meta.audio_codec == "aac" and meta.rotation == 0


def test_probe_ntsc_rate_and_no_audio(tmp_path):
    from artify.media.video import write_frames_h264
    from tests.conftest import textured_video

    path = tmp_path / "ntsc.mp4"
    write_frames_h264(path, textured_video(10), Fraction(30000, 1001))
    meta = probe(path)
    assert meta.fps == "30000/1001" and meta.frames == 10 and not meta.audio


def test_probe_reports_rotation(tmp_path, small_video):
    from artify.media.video import ffmpeg_exe
    import subprocess

    rotated = tmp_path / "rotated.mp4"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-display_rotation", "90", "-i", str(small_video), "-c", "copy",
                    str(rotated)], check=True)
    meta = probe(rotated)
    assert meta.rotation in (90, 270) and (meta.width, meta.height) == (64, 96)
    assert read_frames(rotated, 0, 1).shape == (1, 96, 64, 3)  # frames come out displayed-upright


@pytest.mark.parametrize("content", [b"", b"not a video at all" * 100])
def test_corrupt_or_missing_video_names_the_file(tmp_path, content):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(content)
    with pytest.raises(MediaError, match="broken.mp4"):
        probe(bad)
    with pytest.raises(MediaError, match="nothing.mp4: no such file"):
        probe(tmp_path / "nothing.mp4")


def test_image_is_not_a_video(tmp_path, painting):
    with pytest.raises(MediaError, match="not a video"):
        probe(painting)


def test_processing_size_is_even_and_keeps_aspect():
    assert processing_size(640, 360, 256) == (256, 144)
    assert processing_size(1202, 512, 256) == (256, 110)
    w, h = processing_size(101, 37, 64)
    assert w % 2 == 0 and h % 2 == 0


def test_lossless_round_trip(tmp_path):
    frames = np.random.default_rng(0).integers(0, 256, (5, 32, 48, 3), dtype=np.uint8)
    write_frames_lossless(tmp_path / "x.mkv", frames, Fraction(25))
    assert np.array_equal(read_frames(tmp_path / "x.mkv"), frames)


@pytest.mark.parametrize("clip", ["adain_cutBunny.mp4", "moviepy_big_buck_bunny_0_30.webm", "ccpl_content.avi",
                                  "moviepy_chaplin.mp4"])
def test_chunks_concatenate_to_the_full_decode(tmp_path, clip, monkeypatch):
    """Seeking per span must give exactly the frames a straight decode gives: no dropped or doubled frame."""
    from tests.conftest import require_shared

    bunny_clip = require_shared("videos", clip)
    meta = probe(bunny_clip)
    size = processing_size(meta.width, meta.height, 128)
    full = read_frames(bunny_clip, 0, 45, size=size)
    # read_frames seeking into the middle, resized, gives the same frames (the side-by-side and the A/B clips)
    assert np.array_equal(read_frames(bunny_clip, 29, 16, size=size, fps=Fraction(meta.fps)), full[29:45])
    # spans of at most 20 frames: chunks 0 (0-16), 1 (13-32) and 2 (29-45) each in its own span
    chunks = plan_chunks(meta.frames, chunk_frames=16, chunk_overlap=3, max_frames=45, span_frames=20,
                         keyframes=meta.keyframes)
    write_chunks(chunks, tmp_path / "chunks.tsv")
    assert [c.span for c in chunks] == [0, 1, 2]
    for row in chunks:
        out = tmp_path / f"span{row.span}"
        extract_frames(bunny_clip, tmp_path / "chunks.tsv", row.span, size, meta, out)
        got = read_frames(chunk_frames_path(out, row.chunk))
        assert np.array_equal(got, full[row.read_start: row.stop]), f"chunk {row.chunk}"
    # one span for all three: the overlapping frames are written to both chunks
    chunks = plan_chunks(meta.frames, chunk_frames=16, chunk_overlap=3, max_frames=45)
    write_chunks(chunks, tmp_path / "chunks.tsv")
    assert extract_frames(bunny_clip, tmp_path / "chunks.tsv", 0, size, meta, tmp_path / "all") == 45
    for row in chunks:
        got = read_frames(chunk_frames_path(tmp_path / "all", row.chunk))
        assert np.array_equal(got, full[row.read_start: row.stop]), f"chunk {row.chunk}"
    # more chunks than one ffmpeg process writes: groups, each decoded from its own seek, the same frames
    import artify.media.chunks

    monkeypatch.setattr(artify.media.chunks, "GROUP_CHUNKS", 2)
    assert extract_frames(bunny_clip, tmp_path / "chunks.tsv", 0, size, meta, tmp_path / "grouped") == 45
    for row in chunks:
        got = read_frames(chunk_frames_path(tmp_path / "grouped", row.chunk))
        assert np.array_equal(got, full[row.read_start: row.stop]), f"grouped chunk {row.chunk}"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp")) == []


def test_reading_from_the_middle_gives_each_frame_once(small_video):
    """A seek lands half a frame early; resized or not, every frame must come once (none repeated)."""
    for size in (None, (48, 32)):
        full = read_frames(small_video, size=size)
        for start in (1, 5, 13):
            assert np.array_equal(read_frames(small_video, start, 6, size=size, fps=Fraction(24)),
                                  full[start:start + 6]), (size, start)


def test_probe_counts_frames_and_keyframes_without_decoding(tmp_path):
    """The packet list gives the frame count and keyframes; they agree with a full decode."""
    import subprocess

    from artify.media.video import _decoded_frame_times, ffmpeg_exe, write_frames_h264
    from tests.conftest import textured_video

    path = tmp_path / "gop.mp4"
    write_frames_h264(tmp_path / "src.mp4", textured_video(50), Fraction(25))
    subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(tmp_path / "src.mp4"), "-c:v", "libx264", "-g", "12",
                    "-keyint_min", "12", "-sc_threshold", "0", "-bf", "2", str(path)], check=True)
    meta = probe(path)
    assert meta.frames == len(_decoded_frame_times(path)[1]) == 50 and meta.timing == "constant"
    assert meta.keyframes == [0, 12, 24, 36, 48]


def test_extraction_failure_leaves_no_folder(tmp_path, bunny_clip):
    meta = probe(bunny_clip)
    # a plan that claims more frames than the clip has: the count check fails
    write_chunks(plan_chunks(meta.frames + 10, 300, 3), tmp_path / "chunks.tsv")
    with pytest.raises(MediaError, match="adain_cutBunny.mp4: span 0 should have 250 frames from frame 0, got 240"):
        extract_frames(bunny_clip, tmp_path / "chunks.tsv", 0, (64, 36), meta, tmp_path / "span")
    assert list(tmp_path.iterdir()) == [tmp_path / "chunks.tsv"]


def test_a_failing_producer_leaves_no_file(tmp_path):
    def frames():
        yield np.zeros((8, 8, 3), np.uint8)
        raise RuntimeError("stylization crashed")

    with pytest.raises(RuntimeError, match="crashed"):
        write_frames_lossless(tmp_path / "out.mkv", frames(), Fraction(24))
    with pytest.raises(RuntimeError, match="crashed"):
        save_frames(tmp_path / "out.npy", frames(), 2)
    assert list(tmp_path.iterdir()) == []


def test_saved_frames_round_trip_and_the_count_is_checked(tmp_path):
    frames = np.random.default_rng(0).integers(0, 256, (5, 6, 8, 3), dtype=np.uint8)
    save_frames(tmp_path / "x.npy", iter(frames), 5)
    assert np.array_equal(read_frames(tmp_path / "x.npy"), frames)
    assert np.array_equal(read_frames(tmp_path / "x.npy", 2, 2), frames[2:4])
    with pytest.raises(MediaError, match="y.npy: 5 frames written, 6 planned"):
        save_frames(tmp_path / "y.npy", frames, 6)
    with pytest.raises(MediaError, match="z.npy: more than the 4 frames planned"):
        save_frames(tmp_path / "z.npy", frames, 4)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.npy"]


@pytest.mark.parametrize("shape", [(5, 144, 256, 3), (1, 2, 2, 3), (480, 720, 1280, 3), (7,)])
def test_npy_header_is_numpys(shape):
    import io

    from artify.media.video import npy_header

    f = io.BytesIO()
    np.lib.format.write_array_header_1_0(f, {"descr": "|u1", "fortran_order": False, "shape": shape})
    assert npy_header(shape) == f.getvalue()


def test_a_short_read_is_an_error_not_fewer_frames(tmp_path):
    frames = textured_video(10, 32, 24)
    write_frames_lossless(tmp_path / "x.mkv", frames, Fraction(24))
    save_frames(tmp_path / "x.npy", frames, len(frames))
    assert len(read_frames(tmp_path / "x.mkv", 0, 10)) == 10
    for path in (tmp_path / "x.mkv", tmp_path / "x.npy"):
        with pytest.raises(MediaError, match=r"12 frames wanted from frame 0, but only 10 could be read"):
            read_frames(path, 0, 12, fps=Fraction(24))
        with pytest.raises(MediaError, match=r"5 frames wanted from frame 8, but only 2"):
            read_frames(path, 8, 5, fps=Fraction(24))
