"""virt-launcher's QEMU: a VMI that asks for a real guest boots lab/guest's Linux under QEMU.

(Interface first; the launcher wiring follows.)
"""


class Guests:
    """The real guests of this simulator, by VMI uid."""

    def __init__(self, sim):
        self.sim = sim
        self.by_uid = {}

    def guest_for(self, vmi):
        """The running lab.guest.qemu.Guest of this VMI, or None for a simulated guest."""
        return self.by_uid.get(vmi["metadata"]["uid"])

    async def screenshot(self, vmi):
        """PNG bytes of the real guest's screen (QMP screendump)."""
        raise NotImplementedError

    async def open_connection(self, vmi, port):
        """(reader, writer) of a TCP connection to PORT inside the real guest, as virt-handler
        dials the VMI's port in the launcher's network namespace; ConnectionRefusedError when
        nothing listens there."""
        raise ConnectionRefusedError(f"dial tcp 127.0.0.1:{port}: connect: connection refused")
