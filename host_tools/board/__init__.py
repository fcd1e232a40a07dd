"""Boards and the link to them: the board table, protocol framing, the serial client, QEMU, PlatformIO,
and one way to open a target."""
