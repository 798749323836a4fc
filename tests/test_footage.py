"""Footage as users bring it, made here from a real clip with ffmpeg: a phone's rotation flag, 4:4:4 chroma,
Matroska with a subtitle stream first and PCM audio, audio that starts late or ends early, a download cut
off. Each goes through probe -> extraction (several spans) -> assembly with its audio: the extracted frames
must be exactly the frames of a plain decode, and every output frame that frame after H.264."""
from __future__ import annotations

import subprocess

import numpy as np
import pytest

from artify.media.assemble import assemble, assembled_frames
from artify.media.chunks import chunk_frames_path, extract_frames, plan_chunks, write_chunks
from artify.media.video import ffmpeg_exe, probe, processing_size, read_frames
from artify.settings import Settings
from tests.conftest import require_shared

VARIANTS = {  # name: (ffmpeg arguments after the clip's -i, file suffix)
    "rotated": (["-display_rotation", "90", "-i", "{clip}", "-c", "copy"], ".mp4"),
    "yuv444": (["-i", "{clip}", "-t", "3", "-c:v", "libx264", "-pix_fmt", "yuv444p", "-c:a", "copy"], ".mp4"),
    "subtitles first, pcm audio": (["-i", "{srt}", "-i", "{clip}", "-t", "4", "-map", "0", "-map", "1:v", "-map",
                                    "1:a", "-c:v", "copy", "-c:a", "pcm_s16le", "-c:s", "srt"], ".mkv"),
    "audio starts 1 s late": (["-i", "{clip}", "-itsoffset", "1", "-i", "{clip}", "-map", "0:v", "-map", "1:a",
                               "-c", "copy"], ".mp4"),
    "audio ends after 1 s": (["-i", "{clip}", "-f", "lavfi", "-i", "sine=d=1", "-map", "0:v", "-map", "1:a",
                              "-c:v", "copy", "-c:a", "aac"], ".mp4"),
    "no audio": (["-i", "{clip}", "-c", "copy", "-an"], ".mp4"),
}


def audio_start(video) -> float | None:
    """Seconds at which the first audio packet starts; None without audio."""
    out = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(video), "-map", "0:a:0?", "-c", "copy", "-f",
                          "framecrc", "pipe:1"], capture_output=True, text=True).stdout
    tb = next((ln.split()[-1] for ln in out.splitlines() if ln.startswith("#tb 0:")), None)
    first = next((ln for ln in out.splitlines() if ln.startswith("0,")), None)
    if first is None:
        return None
    num, den = map(int, tb.split("/"))
    return max(0.0, int(first.split(",")[2]) * num / den)


def through_pipeline(video, work, size: int = 96):
    meta = probe(video)
    meta.save(work / "meta.json")
    frame_size = processing_size(meta.width, meta.height, size)
    chunks = plan_chunks(meta.frames, 24, 4, span_frames=50, keyframes=meta.keyframes)
    write_chunks(chunks, work / "chunks.tsv")
    files = []
    for span in sorted({c.span for c in chunks}):
        extract_frames(video, work / "chunks.tsv", span, frame_size, meta, work / f"span{span}")
        files += [chunk_frames_path(work / f"span{span}", c.chunk) for c in chunks if c.span == span]
    assemble(work / "meta.json", work / "chunks.tsv", files, work / "out.mp4",
             content=video, **Settings().stage_values("assemble"))
    extracted = np.stack(list(assembled_frames(work / "chunks.tsv", files)))
    return meta, frame_size, extracted, work / "out.mp4"


@pytest.mark.parametrize("variant", VARIANTS)
def test_footage_variant_keeps_frames_size_and_audio(tmp_path, variant):
    clip = require_shared("videos", "adain_cutBunny.mp4")
    (tmp_path / "subs.srt").write_text("1\n00:00:00,500 --> 00:00:02,000\nHello\n")
    args, suffix = VARIANTS[variant]
    video = tmp_path / f"{variant}{suffix}"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y",
                    *[a.format(clip=clip, srt=tmp_path / "subs.srt") for a in args], str(video)], check=True)
    meta, frame_size, extracted, out = through_pipeline(video, tmp_path)
    result = probe(out)
    if variant == "rotated":
        assert (meta.width, meta.height) == (360, 640) and frame_size == (54, 96)  # upright
    assert (result.width, result.height) == frame_size and result.frames == meta.frames
    assert result.fps == meta.fps and result.timing == "constant"
    assert result.audio == meta.audio and (not meta.audio or result.audio_codec == "aac")
    if meta.audio:  # the audio keeps its place against the picture
        assert abs(audio_start(out) - audio_start(video)) < 0.03
    reference = read_frames(video, size=frame_size, meta=meta)
    assert np.array_equal(extracted, reference) and len(reference) == meta.frames
    got = read_frames(out).astype(np.int16)
    assert len(got) == meta.frames
    assert max(np.abs(reference[k] - got[k]).mean() for k in range(len(got))) < 6  # H.264 at crf 18


def test_a_cut_off_download_gives_the_frames_it_holds(tmp_path):
    """An .mp4 cut at 60 % of its bytes (index at the front): probe counts only the frames whose data is
    there, and the pipeline gives exactly those."""
    clip = require_shared("videos", "adain_cutBunny.mp4")
    whole = tmp_path / "whole.mp4"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(clip), "-c", "copy", "-movflags", "+faststart",
                    str(whole)], check=True)
    cut = tmp_path / "cut off.mp4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size * 6 // 10])
    meta, frame_size, extracted, out = through_pipeline(cut, tmp_path)
    assert 0 < meta.frames < probe(whole).frames
    reference = read_frames(whole, 0, meta.frames, size=frame_size)
    assert np.array_equal(extracted, reference)
    got = read_frames(out).astype(np.int16)
    assert len(got) == meta.frames
    assert max(np.abs(reference[k] - got[k]).mean() for k in range(len(got))) < 6
