"""The bytes behind the lab's volumes: one sparse raw image per PersistentVolume, as a CSI driver keeps.

Only real guests read and write them (QEMU attaches a claim's image as a virtio disk); simulated
guests never do, so an image is made on first use, not when the provisioner binds the volume.
A snapshot is a point-in-time copy of an image (the CSI snapshot); a claim provisioned from a
snapshot, or cloned from a claim, starts as a copy. Copies are sparse (`cp --sparse=always`, as no
library copies holes), and blocking: call them from a thread (`asyncio.to_thread`).
"""
import shutil
import subprocess
from pathlib import Path


class VolumeData:
    def __init__(self, root):
        self.root = Path(root)

    def image(self, pv_name):
        """The image of a PersistentVolume (may not exist yet)."""
        return self.root / "pv" / f"{pv_name}.img"

    def snapshot_image(self, handle):
        """The image of a snapshot, by its CSI snapshot handle."""
        return self.root / "snapshots" / f"{handle}.img"

    def ensure(self, pv_name, size_bytes):
        """The volume's image, made empty (sparse, `size_bytes` long) on first use."""
        path = self.image(pv_name)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "wb") as f:
                f.truncate(int(size_bytes))
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

    @staticmethod
    def _copy(src, dst):
        if not src.exists():
            return False
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_suffix(".part")
        if shutil.which("cp"):
            subprocess.run(["cp", "--sparse=always", str(src), str(tmp)], check=True)
        else:
            shutil.copyfile(src, tmp)
        tmp.replace(dst)
        return True
