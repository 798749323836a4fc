"""artify.atomic: a file appears under its name only complete; a failure leaves the old file or none."""
import pytest

from artify.atomic import atomic_path, atomic_write_bytes, atomic_write_text


def test_a_failure_inside_leaves_no_file_and_no_temporary_file(tmp_path):
    target = tmp_path / "new folder" / "out.png"
    with pytest.raises(RuntimeError, match="encoder died"):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half a picture")
            assert tmp.parent == target.parent and tmp.name.endswith("out.png") and tmp != target
            raise RuntimeError("encoder died")
    assert list(target.parent.iterdir()) == []


def test_an_existing_file_is_kept_on_failure(tmp_path):
    target = tmp_path / "table.tsv"
    target.write_text("old\n")
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(target) as tmp:
            tmp.write_text("new but unfinished")
            raise KeyboardInterrupt  # an interrupted run, not only an error
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["table.tsv"]


def test_success_replaces_the_file_and_nothing_is_left_beside_it(tmp_path):
    target = tmp_path / "table.tsv"
    target.write_text("old\n")
    with atomic_path(target) as tmp:
        tmp.write_text("new\n")
        assert target.read_text() == "old\n"  # the old content stays readable until the rename
    assert target.read_text() == "new\n"
    atomic_write_text(tmp_path / "a" / "b.txt", "text ü")
    atomic_write_bytes(tmp_path / "c.bin", b"\0\1", unique=True)
    assert (tmp_path / "a" / "b.txt").read_text() == "text ü" and (tmp_path / "c.bin").read_bytes() == b"\0\1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "c.bin", "table.tsv"]


def test_a_killed_runs_leftover_is_replaced_and_a_folder_is_written_whole(tmp_path):
    target = tmp_path / "span"
    with atomic_path(target) as tmp:
        tmp.mkdir()
        (tmp / "0000.npy").write_bytes(b"x")
    stale = tmp_path / ".tmp.span"  # what a hard kill inside the block leaves
    stale.mkdir()
    (stale / "junk").write_bytes(b"y")
    with pytest.raises(ValueError):
        with atomic_path(target) as tmp:
            assert tmp == stale and not tmp.exists()  # the leftover is gone before the writer starts
            tmp.mkdir()
            raise ValueError("short video")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["span"]
    assert [p.name for p in target.iterdir()] == ["0000.npy"]


def test_unique_temporary_names_differ_for_parallel_writers(tmp_path):
    target = tmp_path / "cache.pt"
    with atomic_path(target, unique=True) as a, atomic_path(target, unique=True) as b:
        assert a != b and a.name.endswith(".cache.pt") and b.name.endswith(".cache.pt")
        a.write_bytes(b"a")
        b.write_bytes(b"b")
    assert target.read_bytes() == b"a"  # the outer block finished last
    assert [p.name for p in tmp_path.iterdir()] == ["cache.pt"]


def test_a_unique_writer_removes_what_killed_writers_left_and_spares_live_ones(tmp_path):
    """A hard kill inside a unique block leaves `.tmp.<random>.<name>`, which no later writer would overwrite:
    the next writer of that file removes those idle for STALE_SECONDS; a parallel writer's fresh one stays."""
    import os
    import time

    from artify.atomic import STALE_SECONDS, temporary_sibling

    target = tmp_path / "sam_vit_b.pth"
    killed, live = temporary_sibling(target, unique=True), temporary_sibling(target, unique=True)
    killed.write_bytes(b"half a download")
    idle = time.time() - STALE_SECONDS - 60
    os.utime(killed, (idle, idle))
    live.write_bytes(b"a download going on in another job")
    other = temporary_sibling(tmp_path / "other.pth", unique=True)  # another file's: not this writer's business
    other.write_bytes(b"x")
    os.utime(other, (idle, idle))
    atomic_write_bytes(target, b"weights", unique=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([target.name, live.name, other.name])
