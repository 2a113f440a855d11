"""A small tmpfs of the test's own, for a disk that fills up or turns read-only.

Mounting needs root and a kernel that lets this container mount; where it cannot, the tests
that need it are skipped with the reason ``mount`` gave.
"""

from __future__ import annotations

import os
import subprocess

import pytest


class Tmpfs:
    def __init__(self, path: str, size: str):
        self.path = path
        os.makedirs(path, exist_ok=True)
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", path],
                                capture_output=True, text=True)
        if result.returncode != 0:
            pytest.skip(f"cannot mount a {size} tmpfs here (mount said: {result.stderr.strip() or result.returncode}); "
                        "disk-full and read-only storage are tested where mounting is allowed")

    def free(self) -> int:
        stat = os.statvfs(self.path)
        return stat.f_bavail * stat.f_frsize

    def fill(self, leave: int) -> str:
        """Write a filler file that leaves about ``leave`` bytes free; returns its path."""
        filler = os.path.join(self.path, "filler")
        with open(filler, "ab") as f:
            try:
                f.write(b"\0" * max(0, self.free() - leave))
            except OSError:
                pass
        return filler

    def remount(self, mode: str) -> None:
        subprocess.run(["mount", "-o", f"remount,{mode}", self.path], check=True, capture_output=True)

    def unmount(self) -> None:
        # Lazy: a manager actor of the test session may still hold a log file open.
        subprocess.run(["umount", "-l", self.path], capture_output=True)


@pytest.fixture
def tmpfs(tmp_path):
    disk = Tmpfs(str(tmp_path / "tmpfs"), "2m")
    try:
        yield disk
    finally:
        disk.unmount()
