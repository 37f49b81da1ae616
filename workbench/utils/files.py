"""What kind of file a path is, in words: every reader that refuses a non-regular file says which."""

from __future__ import annotations

import stat


def file_kind(mode: int) -> str:
    """What a non-regular file is, in words, for the reason it was left out."""
    if stat.S_ISDIR(mode):
        return "folder"
    if stat.S_ISFIFO(mode):
        return "named pipe"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    return "special file"
