"""Keyframe selection: one sharp, representative keyframe per distinct style; merges; image sources."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from artify.atomic import OWNER_FILE, claim_folder
from artify.style.keyframes import (KEYFRAME_COLUMNS, Candidate, StyleGroup, contact_sheet,
                              laplacian_variance, read_keyframe_table, luminance, merge_groups, sample_frames,
                              select_keyframes, usable_mask)
from artify.settings import Settings
from artify.style.scenes import detect_scenes, frames_to_scenes, write_scenes
from tests.conftest import require_shared
from tests.test_scenes import DETECTION, FPS, TINTS, scene_frames, write_scene_video

SIZE = 128  # Gram signatures at 128 px keep the tests fast; the relative distances barely change with size
_S = Settings()
# The select_keyframes stage's settings at their defaults, as select_keyframes takes them
KEYFRAMES = {"samples_per_scene": _S.keyframe_samples, "blur_threshold": _S.blur_threshold,
             "merge_threshold": _S.merge_threshold, "max_keyframes": _S.max_keyframes}
FAST = KEYFRAMES | {"samples_per_scene": 3, "size": SIZE}


def run(source, tmp_path, scenes=None, **kwargs) -> pd.DataFrame:
    """detect_scenes (unless a scenes table is given) then select_keyframes into tmp_path."""
    scenes_tsv = tmp_path / "scenes.tsv"
    if scenes is None:
        detect_scenes(source, scenes_tsv, **DETECTION)
    else:
        write_scenes(frames_to_scenes([s for s, _ in scenes], [e for _, e in scenes], FPS), scenes_tsv)
    return select_keyframes(source, scenes_tsv, tmp_path / "keyframes", tmp_path / "keyframes.tsv",
                            **{**FAST, **kwargs})


def png(path) -> np.ndarray:
    with Image.open(path) as im:
        assert im.format == "PNG"
        return np.asarray(im.convert("RGB"))


def test_distinct_scenes_each_keep_a_keyframe(tmp_path):
    video = write_scene_video(tmp_path / "v.mp4", [scene_frames(30, 1, TINTS["red"]),
                                                   scene_frames(36, 2, TINTS["blue"]),
                                                   scene_frames(30, 3, TINTS["green"])])
    table = run(video, tmp_path)
    assert table.columns.tolist() == KEYFRAME_COLUMNS
    assert table.scenes.tolist() == ["0", "1", "2"]
    assert table.duration_frames.tolist() == [30, 36, 30]
    for row, (start, end) in zip(table.itertuples(), [(0, 30), (30, 66), (66, 96)]):
        assert start <= row.source_frame < end
        assert row.time == pytest.approx(row.source_frame / 24)
    assert (table.distance_to_next.iloc[:-1] > _S.merge_threshold).all()
    assert np.isnan(table.distance_to_next.iloc[-1])
    image = png(tmp_path / "keyframes" / table.file[1])
    assert image.shape == (96, 128, 3)
    assert image[..., 2].mean() > image[..., 0].mean()  # the blue scene's keyframe is blue
    pd.testing.assert_frame_equal(read_keyframe_table(tmp_path / "keyframes.tsv"), table, check_dtype=False)


def test_near_identical_neighbours_merge_distinct_ones_do_not(tmp_path):
    """Scenes 0 and 1 share a texture (only the moving marker differs); scene 2 is another style."""
    video = write_scene_video(tmp_path / "v.mp4", [scene_frames(30, 1, TINTS["red"], marker=0),
                                                   scene_frames(20, 1, TINTS["red"], marker=3),
                                                   scene_frames(30, 2, TINTS["blue"])])
    table = run(video, tmp_path, scenes=[(0, 30), (30, 50), (50, 80)])
    assert table.scenes.tolist() == ["0,1", "2"]
    assert table.scene.tolist() == [0, 2]
    assert table.duration_frames.tolist() == [50, 30]
    assert table.source_frame[0] < 30  # the longer part's keyframe stands for the merged group
    assert sorted(p.name for p in (tmp_path / "keyframes").iterdir()) == [OWNER_FILE, "keyframe_000.png",
                                                                         "keyframe_001.png"]


def group(scene: int, level: float, frames: int) -> StyleGroup:
    """A one-scene group whose one-layer, 1x1 Gram is `level`: distances are then easy to order by hand."""
    candidate = Candidate(scene, scene * 10, 0.0, np.zeros((2, 2, 3), np.uint8), {"g": torch.tensor([[[level]]])})
    return StyleGroup(candidate, [scene], frames, frames)


def test_cap_merges_the_closest_neighbours_first():
    groups = [group(0, 1.0, 10), group(1, 1.1, 30), group(2, 3.0, 10), group(3, 3.05, 5)]
    # neighbour distances: 0.009, 0.707, 0.0003
    assert [g.scenes for g in merge_groups(groups, 0.0, 8)] == [[0], [1], [2], [3]]
    three = merge_groups(groups, 0.0, 3)
    assert [g.scenes for g in three] == [[0], [1], [2, 3]]
    assert three[2].duration_frames == 15 and three[2].keyframe.scene == 2  # the longer part's keyframe
    two = merge_groups(groups, 0.0, 2)
    assert [g.scenes for g in two] == [[0, 1], [2, 3]] and two[0].keyframe.scene == 1
    assert [g.scenes for g in merge_groups(groups, 0.5, 8)] == [[0, 1], [2, 3]]  # the threshold alone
    assert [g.scenes for g in merge_groups(groups, 1.0, 8)] == [[0, 1, 2, 3]]
    assert [g.scenes for g in merge_groups(groups, 0.0, 1)] == [[0, 1, 2, 3]]


def test_fade_to_black_gives_no_dark_keyframe(tmp_path):
    """Half of the second scene fades to black: its keyframe must come from the lit part."""
    video = write_scene_video(tmp_path / "v.mp4", [scene_frames(30, 1, TINTS["red"]),
                                                   scene_frames(48, 2, TINTS["blue"], fade_out=24)])
    table = run(video, tmp_path, samples_per_scene=8)
    assert table.scenes.tolist() == ["0", "1"]
    lit = scene_frames(1, 2, TINTS["blue"])[0]
    keyframe = png(tmp_path / "keyframes" / table.file[1])
    assert luminance(keyframe[None]).mean() > 0.8 * luminance(lit[None]).mean()
    assert table.source_frame[1] < 30 + 24 + 6  # at most a quarter into the fade


def test_blur_and_uniform_frames_are_not_usable():
    sharp = scene_frames(1, 1)[0]
    blurred = np.asarray(Image.fromarray(sharp).resize((16, 12)).resize((128, 96), Image.Resampling.BILINEAR))
    black = np.full_like(sharp, 8)
    white = np.full_like(sharp, 250)
    flat = np.full_like(sharp, 128)
    mask = usable_mask(np.stack([sharp, blurred, black, white, flat]), blur_threshold=0.2)
    assert mask.tolist() == [True, False, False, False, False]
    assert laplacian_variance(luminance(sharp[None]))[0] > laplacian_variance(luminance(blurred[None]))[0]
    assert sample_frames(0, 80, 4) == [10, 30, 50, 70]
    assert sample_frames(10, 13, 8) == [10, 11, 12]


def test_video_without_cuts_samples_evenly_then_merges(tmp_path):
    """One long scene is split into max_keyframes parts; a steady style merges back to one keyframe, a style
    that changes half way keeps two."""
    steady = write_scene_video(tmp_path / "steady.mp4", [scene_frames(48, 1, TINTS["red"])])
    table = run(steady, tmp_path / "steady", max_keyframes=3, samples_per_scene=2)
    assert len(table) == 1 and table.scenes[0] == "0" and table.duration_frames[0] == 48
    changing = write_scene_video(tmp_path / "changing.mp4", [scene_frames(32, 1, TINTS["red"]),
                                                             scene_frames(32, 2, TINTS["blue"])])
    table = run(changing, tmp_path / "changing", scenes=[(0, 64)], max_keyframes=4, samples_per_scene=2)
    assert table.duration_frames.tolist() == [32, 32]
    assert table.source_frame[0] < 32 <= table.source_frame[1]


def test_image_folder_and_list_sources(tmp_path):
    folder = tmp_path / "styles"
    folder.mkdir()
    images = {"1_red.png": scene_frames(1, 1, TINTS["red"])[0],
              "2_red_again.png": scene_frames(1, 7, TINTS["red"])[0],
              "3_blue.jpg": scene_frames(1, 2, TINTS["blue"])[0]}
    for name, image in images.items():
        Image.fromarray(image).save(folder / name, quality=95)
    table = run(folder, tmp_path / "folder")
    assert table.scenes.tolist() == ["0,1", "2"]  # two images of one style merge, the blue one stays
    assert table.duration_frames.tolist() == [2, 1]
    assert (table.time == 0).all()
    assert png(tmp_path / "folder" / "keyframes" / table.file[0]).shape == (96, 128, 3)

    single = run(folder / "3_blue.jpg", tmp_path / "single")
    assert len(single) == 1 and single.source_frame[0] == 0 and np.isnan(single.distance_to_next[0])

    listing = tmp_path / "order.txt"
    listing.write_text("styles/3_blue.jpg\nstyles/1_red.png\n")
    listed = run(listing, tmp_path / "list")
    assert len(listed) == 2
    assert png(tmp_path / "list" / "keyframes" / listed.file[0])[..., 2].mean() > 100  # blue first


def test_large_images_are_capped_at_1024(tmp_path):
    big = np.asarray(Image.fromarray(scene_frames(1, 1)[0]).resize((1600, 1200)))
    Image.fromarray(big).save(tmp_path / "big.png")
    table = run(tmp_path / "big.png", tmp_path)
    assert png(tmp_path / "keyframes" / table.file[0]).shape == (768, 1024, 3)


def test_stale_keyframes_of_an_earlier_run_are_removed(tmp_path):
    out = claim_folder(tmp_path / "keyframes", "select-keyframes")  # an earlier run's folder
    (out / "keyframe_005.png").write_bytes(b"old")
    (out / "notes.txt").write_text("kept")
    Image.fromarray(scene_frames(1, 1)[0]).save(tmp_path / "style.png")
    run(tmp_path / "style.png", tmp_path)
    assert sorted(p.name for p in out.iterdir()) == [OWNER_FILE, "keyframe_000.png", "notes.txt"]


def test_a_folder_select_keyframes_did_not_make_is_left_as_it_is(tmp_path):
    """Its stale keyframes are removed and its keyframes written over: never in a user's folder that happens to
    hold files of those names."""
    from artify.atomic import NotOurFolderError

    out = tmp_path / "keyframes"
    out.mkdir()
    (out / "keyframe_005.png").write_bytes(b"a user's picture")
    Image.fromarray(scene_frames(1, 1)[0]).save(tmp_path / "style.png")
    with pytest.raises(NotOurFolderError, match="keyframes: a folder artify select-keyframes did not make"):
        run(tmp_path / "style.png", tmp_path)
    assert [p.name for p in out.iterdir()] == ["keyframe_005.png"]


def test_bad_inputs_name_the_file(tmp_path):
    Image.fromarray(scene_frames(1, 1)[0]).save(tmp_path / "style.png")
    write_scenes(frames_to_scenes([0, 1], [1, 2], FPS), tmp_path / "two.tsv")
    with pytest.raises(ValueError, match="two.tsv"):
        select_keyframes(tmp_path / "style.png", tmp_path / "two.tsv", tmp_path / "k", tmp_path / "k.tsv", **FAST)
    with pytest.raises(ValueError, match="missing.tsv"):
        select_keyframes(tmp_path / "style.png", tmp_path / "missing.tsv", tmp_path / "k", tmp_path / "k.tsv", **FAST)
    (tmp_path / "broken.png").write_bytes(b"not a png")
    write_scenes(frames_to_scenes([0], [1], FPS), tmp_path / "one.tsv")
    from artify.media.video import MediaError

    with pytest.raises(MediaError, match="broken.png"):
        select_keyframes(tmp_path / "broken.png", tmp_path / "one.tsv", tmp_path / "k", tmp_path / "k.tsv", **FAST)
    black = write_scene_video(tmp_path / "black.mp4", [np.zeros((20, 96, 128, 3), np.uint8)])
    write_scenes(frames_to_scenes([0], [20], FPS), tmp_path / "black.tsv")
    with pytest.raises(ValueError, match="black.mp4.*no usable keyframe"):
        select_keyframes(black, tmp_path / "black.tsv", tmp_path / "k", tmp_path / "k.tsv", **FAST)


def test_contact_sheet_is_a_png_grid(tmp_path):
    video = write_scene_video(tmp_path / "v.mp4", [scene_frames(30, 1, TINTS["red"]),
                                                   scene_frames(30, 2, TINTS["blue"])])
    table = run(video, tmp_path)
    contact_sheet(tmp_path / "keyframes.tsv", tmp_path / "keyframes", tmp_path / "sheet.png")
    sheet = png(tmp_path / "sheet.png")
    assert len(table) == 2
    assert sheet.shape[1] >= 2 * 256 and sheet.shape[0] > 192


def test_big_buck_bunny_keeps_one_keyframe_per_shot(tmp_path):
    """Its four shots are distinct styles: none merge at the default threshold, and the first keyframe does
    not come from the fade-in from black that opens the clip."""
    video = require_shared("videos", "moviepy_big_buck_bunny_0_30.webm")
    table = run(video, tmp_path)
    assert table.scenes.tolist() == ["0", "1", "2", "3"]
    assert table.duration_frames.sum() == 720
    bounds = [0, 283, 376, 551, 720]
    for k, row in enumerate(table.itertuples()):
        assert bounds[k] - 2 <= row.source_frame < bounds[k + 1] + 2
    assert table.source_frame[0] > 40  # past the fade-in
    assert (table.distance_to_next.iloc[:-1] > 2 * _S.merge_threshold).all()
