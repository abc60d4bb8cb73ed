"""Block devices: raw files, qcow2 images, partition slices, memory buffers."""

from nuwa.formats.blockdev import BlockDevice, MemoryDevice, RawFile, SliceDevice  # noqa: F401
