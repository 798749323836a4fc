"""Frame timing: phone-style variable-rate video, animated GIFs and pictures that start after their audio
(MP4, MPEG-TS) keep their duration and their sync with the audio through probe, extraction and assembly.

The tests make their own media with ffmpeg: every frame carries its index as a binary code (so every output
frame can be traced to the input frame it shows), one frame is a white flash, and the audio beeps exactly
when the flash starts. The expected output frame n is the input frame shown n / fps after the file starts
(its sound, or its picture without one; rounded to the nearest output frame), computed here from the
timestamps the file holds.
"""
from __future__ import annotations

import re
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from artify.media.assemble import assemble, assembled_frames
from artify.media.chunks import chunk_frames_path, extract_frames, plan_chunks, write_chunks
from artify.media.video import constant_rate, ffmpeg_exe, filter_text, frame_selection, option_args, probe, read_frames
from artify.settings import Settings

W, H = 160, 96
BITS = 8
CODE_ROWS = 24  # the code: BITS blocks across the top, grey for 1, black for 0
RATE = 48000  # audio sample rate


def coded_frames(n: int, flash: int) -> np.ndarray:
    """Frame i carries i in binary across its top; frame `flash` is white below the code, the rest dark."""
    frames = np.full((n, H, W, 3), 40, np.uint8)
    block = W // BITS
    for i in range(n):
        for b in range(BITS):
            frames[i, :CODE_ROWS, b * block: (b + 1) * block] = 160 if (i >> b) & 1 else 0
    frames[flash, CODE_ROWS:] = 255
    return frames


def frame_codes(frames: np.ndarray) -> tuple[list[int], list[bool]]:
    """Each frame's index (from its code) and whether it is the flash."""
    block = frames.shape[2] // BITS
    top = frames[:, 4: CODE_ROWS - 4].astype(float)
    bits = [top[:, :, b * block + 4: (b + 1) * block - 4].mean(axis=(1, 2, 3)) > 80 for b in range(BITS)]
    codes = sum(bit.astype(int) << b for b, bit in enumerate(bits))
    return codes.tolist(), (frames[:, CODE_ROWS + 4:].mean(axis=(1, 2, 3)) > 200).tolist()


def encode(frames: np.ndarray, ticks: str, tb: int, out: Path, audio_expr: str | None = None,
           seconds: float = 0.0, output_args: tuple[str, ...] = ()) -> list[Fraction]:
    """Write frames whose start times are `ticks` / tb seconds (an ffmpeg expression of the frame number N;
    the muxer keeps them: passthrough); returns the start times the file holds on its own clock (checked by
    the callers)."""
    args = [ffmpeg_exe(), "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{W}x{H}",
            "-r", "25", "-i", "pipe:"]
    if audio_expr:
        args += ["-f", "lavfi", "-i", f"aevalsrc='{audio_expr}':s={RATE}:d={seconds}"]
    args += ["-vf", f"settb=1/{tb},setpts='{ticks}'", "-fps_mode", "passthrough", "-enc_time_base", f"1/{tb}"]
    if out.suffix == ".gif":
        args += ["-f", "gif"]
    else:
        args += ["-c:v", "libx264", "-crf", "10", "-pix_fmt", "yuv420p"]
    if audio_expr:
        args += ["-c:a", "aac", "-b:a", "128k"]
    subprocess.run([*args, *output_args, str(out)], input=frames.tobytes(), check=True)
    return [pts for pts, _ in framecrc_times(out, "0:v:0")]


def expected_sources(starts: list[Fraction], fps: Fraction, n: int) -> list[int]:
    """The input frame shown at each output frame: the last whose start rounds (half up) to at most it."""
    slots = [int(t * fps + Fraction(1, 2)) for t in starts]
    return [max([0] + [i for i, s in enumerate(slots) if s <= k]) for k in range(n)]


def run_through_pipeline(video: Path, work: Path):
    """probe -> plan (small chunks, several extraction spans) -> extract -> the extracted frames as the
    'stylized' chunks -> assemble with the video's audio. Returns (input meta, output path)."""
    meta = probe(video)
    meta.save(work / "meta.json")
    chunks = plan_chunks(meta.frames, chunk_frames=10, chunk_overlap=3, span_frames=20, keyframes=meta.keyframes)
    write_chunks(chunks, work / "chunks.tsv")
    assert len({c.span for c in chunks}) >= 3  # seeks into the middle of the video are exercised
    files = []
    for span in sorted({c.span for c in chunks}):
        extract_frames(video, work / "chunks.tsv", span, (meta.width, meta.height), meta, work / f"span{span}")
        files += [chunk_frames_path(work / f"span{span}", c.chunk) for c in chunks if c.span == span]
    out = work / "out.mp4"
    assemble(work / "meta.json", work / "chunks.tsv", files, out,
             content=video, **Settings().stage_values("assemble"))
    # every reader gives the same frames: read_frames (evaluate, reports, keyframes) whole and from the middle
    extracted = np.stack(list(assembled_frames(work / "chunks.tsv", files)))
    assert np.array_equal(read_frames(video, meta=meta), extracted)
    assert np.array_equal(read_frames(video, 37, 20, size=(meta.width, meta.height), meta=meta), extracted[37:57])
    return meta, out


def beep_start(video: Path) -> float:
    """Seconds from the start of the video's audio to the beep's first loud sample."""
    pcm = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(video), "-map", "0:a:0", "-ac", "1", "-ar",
                          str(RATE), "-f", "s16le", "pipe:1"], capture_output=True, check=True).stdout
    samples = np.abs(np.frombuffer(pcm, np.int16).astype(float))
    return int(np.argmax(samples > 0.3 * samples.max())) / RATE


def framecrc_times(video: Path, stream: str) -> list[tuple[Fraction, Fraction]]:
    """(start, duration) in seconds of every decoded frame of a stream, on the file's own clock, in order."""
    out = subprocess.run([ffmpeg_exe(), "-v", "error", "-copyts", "-i", str(video), "-map", stream, "-fps_mode",
                          "passthrough", "-enc_time_base", "demux", "-f", "framecrc", "pipe:1"],
                         capture_output=True, text=True, check=True).stdout
    tb = Fraction(*map(int, re.search(r"^#tb 0: (\d+)/(\d+)", out, re.M).groups()))
    rows = [ln.split(",") for ln in out.splitlines() if ln.startswith("0,")]
    return sorted((int(r[2]) * tb, int(r[3]) * tb) for r in rows)


def first_sound(video: Path) -> Fraction:
    """Where the first decoded audio sample lies on the file's own clock."""
    return framecrc_times(video, "0:a:0")[0][0]


def check_every_frame(out: Path, starts: list[Fraction], fps: Fraction, n: int, flash: int) -> list[int]:
    frames = read_frames(out)
    assert len(frames) == n
    codes, flashes = frame_codes(frames)
    expected = expected_sources(starts, fps, n)
    assert codes == expected, [k for k in range(n) if codes[k] != expected[k]][:10]
    assert flashes == [s == flash for s in expected]
    return expected


def test_variable_rate_video_keeps_its_duration_and_its_sync(tmp_path):
    """Phone-like timing: 30 fps for 2 s, 15 fps for 2 s, then 24 fps, with up to 1 ms of jitter, the video
    starting 0.2 s after the audio (its first frame is held until then). A flash at frame 100 and a beep at
    that frame's start."""
    tb, n, flash = 90000, 130, 100
    ticks = [18000 + (i * 3000 if i < 60 else 180000 + (i - 60) * 6000 if i < 90 else 360000 + (i - 90) * 3750)
             + 45 * ((7 * i) % 3) for i in range(n)]
    starts = [Fraction(t, tb) for t in ticks]
    end = starts[-1] + Fraction(1, 24)
    beep = float(starts[flash])
    video = tmp_path / "phone clip.mp4"
    held = encode(coded_frames(n, flash), "18000 + if(lt(N,60), N*3000, if(lt(N,90), 180000 + (N-60)*6000, "
                  "360000 + (N-90)*3750)) + 45*mod(7*N,3)", tb, video,
                  audio_expr=f"0.8*sin(2*PI*1000*t)*between(t,{beep:.6f},{beep + 0.15:.6f})",
                  seconds=float(end) + 0.3)
    assert held == starts

    meta, out = run_through_pipeline(video, tmp_path)
    assert (meta.timing, meta.source_frames, meta.fps) == ("variable", n, "30/1")
    fps = Fraction(meta.fps)
    assert abs(meta.frames / fps - end) <= 1 / fps  # the input's length, within one frame
    result = probe(out)
    assert (result.timing, result.fps, result.frames) == ("constant", "30/1", meta.frames)
    shown = check_every_frame(out, starts, fps, meta.frames, flash)
    assert shown[:6] == [0] * 6  # held from 0 s until the video starts, 0.2 s in
    # the flash is seen with the beep: within half an output frame (the nearest frame shows it)
    flash_out = shown.index(flash) / fps
    assert abs(float(flash_out) - beep_start(out)) <= 0.5 / fps + 0.005
    assert abs(beep_start(video) - beep) <= 0.005  # the input's own beep is where the test put it


# How a file says that its picture starts 1 s and 2 frames (1.08 s at 25 fps) after its audio.
LATE_PICTURE = {
    "mp4 with an edit list": (".mp4", ()),  # the picture's delay is an empty edit
    "mp4 without an edit list": (".mp4", ("-use_editlist", "0")),  # the first picture, at its B-frame delay
    # (2 frames), is shown until the second
    "mpeg-ts": (".ts", ()),  # every stream's timestamps as they are, from 1.4 s (the muxer's delay)
}


def late_picture(folder: Path, case: str, n: int = 100, flash: int = 30) -> tuple[Path, list[Fraction]]:
    """A camcorder-like file of LATE_PICTURE's kind: 25 fps, the picture 1.08 s after the audio, a keyframe
    every 12 frames (so spans after the first start by seeking), a flash at frame `flash` and a beep at its
    start. Returns the file and its pictures' start times on its clock."""
    suffix, muxing = LATE_PICTURE[case]
    tb, delay = 90000, 97200
    beep = (delay + flash * 3600) / tb
    video = folder / f"late picture{suffix}"
    starts = encode(coded_frames(n, flash), f"{delay} + N*3600", tb, video,
                    audio_expr=f"0.8*sin(2*PI*1000*t)*between(t,{beep:.6f},{beep + 0.15:.6f})", seconds=n / 25 + 1.5,
                    output_args=("-g", "12", *muxing))
    sound = first_sound(video)
    assert starts[1] - sound >= Fraction(delay + 3600, tb)  # the second picture comes 1.12 s or more after
    assert abs(float(starts[flash] - sound) - beep_start(video)) <= 0.005  # the input is in sync
    return video, starts


@pytest.mark.parametrize("case", LATE_PICTURE)
def test_picture_that_starts_after_its_audio_keeps_its_sync(tmp_path, case):
    """The output starts where the audio does, the first picture held until it starts, then every input frame
    in its place; the flash is seen with the beep, and no frame is lost at the end."""
    n, flash = 100, 30
    video, starts = late_picture(tmp_path, case, n, flash)
    sound = first_sound(video)
    meta, out = run_through_pipeline(video, tmp_path)
    fps = Fraction(meta.fps)
    assert fps == 25
    assert meta.frames == int((starts[-1] - sound) * fps + Fraction(1, 2)) + 1  # from the sound to the last frame
    shown = check_every_frame(out, [t - sound for t in starts], fps, meta.frames, flash)
    assert shown[:28] == [0] * 28 and shown[-n + 1:] == list(range(1, n))
    assert abs(float(first_sound(out))) <= 0.001  # the output's sound starts with its first frame
    assert abs(float(shown.index(flash) / fps) - beep_start(out)) <= 0.5 / fps + 0.005


@pytest.mark.parametrize("case", ["mp4 with an edit list", "mpeg-ts"])
def test_a_read_from_a_keyframe_starts_decoding_on_it(tmp_path, case):
    """Each of the probe's seeks decodes from its own keyframe in an MP4 (not an earlier one: a whole GOP
    decoded for nothing; an MP4 seeks by display time), and never from a later one (an MPEG-TS seek by display
    time lands after the keyframe, and decoding starts at the next: frames lost). An MPEG-TS's binary search
    may land a keyframe early in a file this small (about 100 bytes a frame)."""
    video, _ = late_picture(tmp_path, case)
    meta = probe(video)
    assert len(meta.seeks) >= 6
    for frame, seconds in meta.seeks:
        options, filters = frame_selection(meta, frame, frame + 1)
        assert options["ss"] == f"{seconds:.6f}"
        first = subprocess.run([ffmpeg_exe(), "-v", "error", *option_args(options), "-i", str(video), "-map", "0:v:0",
                                "-vf", filter_text(filters[:-1]), "-frames:v", "1", "-f", "framecrc", "pipe:1"],
                               capture_output=True, text=True, check=True).stdout.splitlines()[-1]
        decoded_from = int(first.split(",")[2])  # the first frame decoded, in output frames
        assert decoded_from == frame if case.startswith("mp4") else decoded_from in meta.keyframes[:meta.keyframes.index(frame) + 1]


def test_animated_gif_keeps_its_duration(tmp_path):
    """A GIF of 36 frames with delays of 20, 30, 40 and 50 ms (GIF timestamps are in 1/100 s)."""
    n, flash = 36, 21
    delays = [2, 3, 4, 5] * 9
    ticks = [sum(delays[:i]) for i in range(n)]
    starts = [Fraction(t, 100) for t in ticks]
    gif = tmp_path / "anim.gif"
    held = encode(coded_frames(n, flash), "floor(N/4)*14 + if(eq(mod(N,4),0), 0, if(eq(mod(N,4),1), 2, "
                  "if(eq(mod(N,4),2), 5, 9)))", 100, gif)
    assert held == starts

    meta, out = run_through_pipeline(gif, tmp_path)
    assert (meta.timing, meta.source_frames, meta.source_fps) == ("variable", n, "100/1")
    fps = Fraction(meta.fps)
    assert fps == 50  # the shortest delays, 20 ms, each get their own frame: no frame of the GIF is lost
    assert abs(meta.frames / fps - Fraction(sum(delays), 100)) <= 1 / fps
    shown = check_every_frame(out, starts, fps, meta.frames, flash)
    assert sorted(set(shown)) == list(range(n))
    assert abs(shown.index(flash) / fps - starts[flash]) <= 0.5 / fps
    assert not probe(out).audio


def test_constant_rate_video_is_left_as_it_is(tmp_path):
    n = 40
    video = tmp_path / "cfr.mp4"
    assert encode(coded_frames(n, 10), "N*1001", 30000, video) == [Fraction(i * 1001, 30000) for i in range(n)]
    meta = probe(video)
    assert (meta.timing, meta.fps, meta.frames, meta.source_frames) == ("constant", "30000/1001", n, n)
    codes, _ = frame_codes(read_frames(video, 7, 20, meta=meta))
    assert codes == list(range(7, 27))


@pytest.mark.parametrize("durations, rate", [
    ([Fraction(1, 30)] * 9 + [Fraction(1, 15)], Fraction(30)),  # mostly 30 fps, some frames twice as long
    ([Fraction(1001, 24000)] * 3 + [Fraction(2002, 24000)], Fraction(24000, 1001)),  # 23.98 fps, frames dropped
    ([Fraction(d, 10000) for d in (345, 325, 352, 336, 660)] * 4, Fraction(30)),  # jittered: 30.8 fps snaps
    ([Fraction(d, 100) for d in (2, 3, 4, 5)], Fraction(50)),  # the GIF above
    ([Fraction(d, 100) for d in (3, 4, 5)], Fraction(100, 3)),  # no standard rate within 5 %: kept as it is
    ([Fraction(5)], Fraction(1)),  # a slide show: at least 1 fps
])
def test_constant_rate_choice(durations, rate):
    assert constant_rate(durations) == rate
