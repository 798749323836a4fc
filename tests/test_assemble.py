"""assemble on real content: the chunks' frames, exactly, with the content's own audio (or none)."""
from __future__ import annotations

import numpy as np
import pytest

from artify.media.assemble import assemble
from artify.media.chunks import plan_chunks, write_chunks
from artify.media.video import MediaError, VideoMeta, probe, read_frames
from artify.settings import Settings
from tests.conftest import require_shared

ASSEMBLE = Settings().stage_values("assemble")  # crf and audio at their defaults


def chunk_files(d, meta: VideoMeta, frames: int, size=(64, 36)):
    """Stylized chunks for the first `frames` frames: chunk i's pixels are all 40 i."""
    plan = plan_chunks(meta.frames, 8, 2, max_frames=frames)
    write_chunks(plan, d / "chunks.tsv")
    meta.save(d / "meta.json")
    paths = []
    for c in plan:
        paths.append(d / f"stylized_{c.chunk:04d}.npy")
        np.save(paths[-1], np.full((c.stop - c.read_start, size[1], size[0], 3), 40 * c.chunk, np.uint8))
    return paths


@pytest.mark.parametrize("clip, codec", [("adain_cutBunny.mp4", "aac"), ("moviepy_big_buck_bunny_0_30.webm", "aac")])
def test_output_carries_the_contents_audio_cut_to_the_frames(tmp_path, clip, codec):
    """AAC is copied; Vorbis (not allowed in .mp4 by every player) is re-encoded to AAC."""
    content = require_shared("videos", clip)
    meta = probe(content)
    paths = chunk_files(tmp_path, meta, 30)
    assert assemble(tmp_path / "meta.json", tmp_path / "chunks.tsv", paths, tmp_path / "out.mp4", content=content,
                    **ASSEMBLE) == 30
    out = probe(tmp_path / "out.mp4")
    assert (out.frames, out.width, out.height, out.fps) == (30, 64, 36, meta.fps)
    assert out.audio and out.audio_codec == codec
    assert abs(out.duration - 30 / 24) < 0.1  # the audio is cut to the video
    frames = read_frames(tmp_path / "out.mp4")[:, 18, 32, 0].astype(int)
    assert abs(frames[3] - 0) <= 2 and abs(frames[12] - 40) <= 2 and abs(frames[28] - 120) <= 2


def test_audio_none_and_required(tmp_path, bunny_clip):
    meta = probe(bunny_clip)
    paths = chunk_files(tmp_path, meta, 16)
    assemble(tmp_path / "meta.json", tmp_path / "chunks.tsv", paths, tmp_path / "out.mp4", content=bunny_clip,
             **ASSEMBLE | {"audio": "none"})
    assert not probe(tmp_path / "out.mp4").audio
    silent = VideoMeta(**{**meta.__dict__, "audio": False, "audio_codec": None})
    paths = chunk_files(tmp_path, silent, 16)
    with pytest.raises(MediaError, match="has no audio stream, and the config says audio: required"):
        assemble(tmp_path / "meta.json", tmp_path / "chunks.tsv", paths, tmp_path / "req.mp4", content=bunny_clip,
                 **ASSEMBLE | {"audio": "required"})
    assert not (tmp_path / "req.mp4").exists()


def test_assemble_probes_what_it_wrote_and_refuses_a_short_video(tmp_path, bunny_clip, monkeypatch):
    """A muxer that drops frames (simulated: the frame count cut by a duration limit) fails assemble, and the
    wrong file is removed rather than left looking finished."""
    import artify.media.video as video

    meta = probe(bunny_clip)
    paths = chunk_files(tmp_path, meta, 16)
    real = video.write_frames_h264

    def dropping(path, frames, fps, **kwargs):
        return real(path, list(frames)[:13], fps, **kwargs)

    monkeypatch.setattr("artify.media.assemble.write_frames_h264", dropping)
    with pytest.raises(MediaError, match=r"out.mp4: 13 frames written, 16 planned; the file was removed"):
        assemble(tmp_path / "meta.json", tmp_path / "chunks.tsv", paths, tmp_path / "out.mp4", content=bunny_clip,
                 **ASSEMBLE)
    assert not (tmp_path / "out.mp4").exists()
