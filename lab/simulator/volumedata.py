"""The bytes behind the lab's volumes: one sparse raw image per PersistentVolume, as a CSI driver keeps.

Only real guests read and write them (QEMU attaches a claim's image as a virtio disk); simulated
guests never do, so an image is made on first use, not when the provisioner binds the volume.
A snapshot is a point-in-time copy of an image (the CSI snapshot); a claim provisioned from a
snapshot, or cloned from a claim, starts as a copy.

Copies keep holes (only the data extents the source file system reports are read, and all-zero
blocks in them are skipped, as `cp --sparse=always` does), and every new file appears atomically
(written under a temporary name, then renamed), so a reader sees no image or a whole one.
Everything here blocks: call it from a thread (`asyncio.to_thread`).
"""
import errno
import os
import tempfile
from pathlib import Path

BLOCK = 1 << 20   # the copy's read size; all-zero blocks of it stay holes
ZEROS = bytes(BLOCK)


def _checked(name, what):
    """NAME as a file name, or ValueError (a PV name or snapshot handle never holds a path)."""
    name = str(name or "")
    if not name or "/" in name or "\0" in name or name in (".", ".."):
        raise ValueError(f"{what} {name!r} cannot name a volume image")
    return name


class VolumeData:
    def __init__(self, root):
        self.root = Path(root)

    def image(self, pv_name):
        """The image of a PersistentVolume (may not exist yet)."""
        return self.root / "pv" / f"{_checked(pv_name, 'PersistentVolume name')}.img"

    def snapshot_image(self, handle):
        """The image of a snapshot, by its CSI snapshot handle."""
        return self.root / "snapshots" / f"{_checked(handle, 'snapshot handle')}.img"

    def ensure(self, pv_name, size_bytes):
        """The volume's image, made empty (sparse, `size_bytes` long) on first use, and grown to
        `size_bytes` when the claim was expanded since (never shrunk, as no CSI driver shrinks)."""
        path = self.image(pv_name)
        size = int(size_bytes)
        if not path.exists():
            try:
                self._publish(path, lambda f: f.truncate(size), replace=False)
            except FileExistsError:
                pass   # made meanwhile by another caller
        if path.stat().st_size < size:
            os.truncate(path, size)
        return path

    def snapshot(self, pv_name, handle):
        """Copy a volume's image to a snapshot; False when the volume has no data yet (nothing to copy)."""
        return self._copy(self.image(pv_name), self.snapshot_image(handle))

    def restore(self, handle, pv_name):
        """Start a volume as a copy of a snapshot; False when the snapshot holds no data."""
        return self._copy(self.snapshot_image(handle), self.image(pv_name))

    def clone(self, source_pv, pv_name):
        """Start a volume as a copy of another volume; False when the source has no data."""
        return self._copy(self.image(source_pv), self.image(pv_name))

    def delete_volume(self, pv_name):
        self.image(pv_name).unlink(missing_ok=True)

    def delete_snapshot(self, handle):
        self.snapshot_image(handle).unlink(missing_ok=True)

    # ------------------------------------------------------------------------- copies
    def _copy(self, src, dst):
        try:
            source = open(src, "rb")
        except FileNotFoundError:
            return False
        with source:
            self._publish(dst, lambda out: sparse_copy(source, out))
        return True

    @staticmethod
    def _publish(path, write, replace=True):
        """Write a new file with WRITE(file object) under a temporary name beside PATH, then move it
        to PATH in one step (replace=False: FileExistsError when PATH exists, and PATH is kept)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out:
                write(out)
                out.flush()
                os.fsync(out.fileno())
            if replace:
                os.replace(tmp, path)
            else:
                os.link(tmp, path)   # fails when PATH exists: never replaces an image in use
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)


def _extents(fd, size):
    """(start, end) of the data extents of an open file, from SEEK_DATA / SEEK_HOLE (the whole
    file where the file system cannot tell)."""
    pos = 0
    while pos < size:
        try:
            start = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError as exc:
            if exc.errno == errno.ENXIO:   # no data after pos
                return
            yield pos, size      # SEEK_DATA unsupported: all of it
            return
        end = os.lseek(fd, start, os.SEEK_HOLE)
        yield start, end
        pos = end


def sparse_copy(source, out):
    """Copy the open file SOURCE to the open file OUT (both binary): the same length, data blocks
    written where they are, holes and all-zero blocks left as holes."""
    fd = source.fileno()
    size = os.fstat(fd).st_size
    for start, end in _extents(fd, size):
        pos = start
        while pos < end:
            block = os.pread(fd, min(BLOCK, end - pos), pos)
            if not block:
                break
            if block != ZEROS[:len(block)]:
                os.pwrite(out.fileno(), block, pos)
            pos += len(block)
    out.truncate(size)
