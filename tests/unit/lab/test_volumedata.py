"""The bytes behind the lab's volumes (lab/simulator/volumedata.py): images made on first use and
grown with their claim, snapshots / restores / clones as sparse, atomic copies, and names that
cannot escape the volume folder."""
import os

import pytest

from simulator import volumedata
from simulator.volumedata import VolumeData

MIB = 1 << 20


def allocated(path):
    return os.stat(path).st_blocks * 512


def write_at(path, offset, data):
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(data)


def test_ensure_makes_a_sparse_image_once_and_grows_it_with_the_claim(tmp_path):
    vd = VolumeData(tmp_path)
    path = vd.ensure("pvc-1", 64 * MIB)
    assert path == tmp_path / "pv" / "pvc-1.img"
    assert path.stat().st_size == 64 * MIB and allocated(path) < MIB
    write_at(path, 5 * MIB, b"kept")
    assert vd.ensure("pvc-1", 64 * MIB) == path             # a second use keeps the data
    assert vd.ensure("pvc-1", 128 * MIB).stat().st_size == 128 * MIB   # expanded claim
    assert vd.ensure("pvc-1", 32 * MIB).stat().st_size == 128 * MIB    # never shrunk
    assert path.read_bytes()[5 * MIB:5 * MIB + 4] == b"kept"
    assert [p.name for p in path.parent.iterdir()] == ["pvc-1.img"]   # no temporary file left


def test_snapshot_restore_and_clone_copy_data_and_keep_holes(tmp_path, monkeypatch):
    monkeypatch.setattr(volumedata, "BLOCK", 64 * 1024)   # small blocks: the zero block below is skipped
    monkeypatch.setattr(volumedata, "ZEROS", bytes(64 * 1024))
    vd = VolumeData(tmp_path)
    src = vd.ensure("pvc-src", 256 * MIB)
    write_at(src, 0, b"superblock")
    write_at(src, 100 * MIB, b"\0" * (64 * 1024) + b"file data")   # a written block of zeros, then data
    assert vd.snapshot("pvc-src", "snap-1") is True
    snap = vd.snapshot_image("snap-1")
    write_at(src, 0, b"changed!!!")   # the snapshot is a point-in-time copy
    assert vd.restore("snap-1", "pvc-restored") is True
    assert vd.clone("pvc-src", "pvc-clone") is True
    for path, head in ((snap, b"superblock"), (vd.image("pvc-restored"), b"superblock"),
                       (vd.image("pvc-clone"), b"changed!!!")):
        assert path.stat().st_size == 256 * MIB
        assert allocated(path) <= 2 * 64 * 1024 + 8192, path   # the data blocks only, not 256 MiB
        with open(path, "rb") as f:
            assert f.read(10) == head
            f.seek(100 * MIB + 64 * 1024)
            assert f.read(9) == b"file data"
            f.seek(100 * MIB)
            assert f.read(64 * 1024) == bytes(64 * 1024)


def test_copies_of_missing_sources_report_false_and_leave_nothing(tmp_path):
    vd = VolumeData(tmp_path)
    assert vd.snapshot("pvc-never-used", "snap-x") is False
    assert vd.restore("snap-x", "pvc-new") is False
    assert vd.clone("pvc-never-used", "pvc-new") is False
    assert not vd.snapshot_image("snap-x").exists() and not vd.image("pvc-new").exists()


def test_a_failed_copy_keeps_the_old_image_and_leaves_no_partial_file(tmp_path, monkeypatch):
    vd = VolumeData(tmp_path)
    write_at(vd.ensure("pvc-a", MIB), 0, b"old")
    write_at(vd.ensure("pvc-b", MIB), 0, b"new")

    def broken(source, out):
        out.write(b"half")
        raise OSError("disk full")
    monkeypatch.setattr(volumedata, "sparse_copy", broken)
    with pytest.raises(OSError, match="disk full"):
        vd.clone("pvc-b", "pvc-a")
    assert vd.image("pvc-a").read_bytes()[:3] == b"old"
    assert sorted(p.name for p in (tmp_path / "pv").iterdir()) == ["pvc-a.img", "pvc-b.img"]


def test_delete_removes_images_and_tolerates_missing_ones(tmp_path):
    vd = VolumeData(tmp_path)
    vd.ensure("pvc-1", MIB)
    vd.snapshot("pvc-1", "snap-1")
    vd.delete_volume("pvc-1")
    vd.delete_snapshot("snap-1")
    vd.delete_volume("pvc-1")
    vd.delete_snapshot("snap-1")
    assert not vd.image("pvc-1").exists() and not vd.snapshot_image("snap-1").exists()


@pytest.mark.parametrize("name", ["", "..", "a/b", "../../etc/passwd", None])
def test_names_that_are_not_plain_file_names_are_refused(tmp_path, name):
    vd = VolumeData(tmp_path)
    with pytest.raises(ValueError, match="cannot name a volume image"):
        vd.ensure(name, MIB)
    with pytest.raises(ValueError, match="cannot name a volume image"):
        vd.snapshot("pvc-1", name)
