"""The lab's real guest: build.py makes it from Debian packages, qemu.py boots it."""
