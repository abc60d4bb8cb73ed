"""Filesystems: the model protocol, its backends (ext4, memory, host directory), overlays, diffs."""

from nuwa.fs.model import FileHandle, FileSystem, Stat, StatVFS  # noqa: F401
