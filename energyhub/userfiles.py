"""Files a user names (site files, CSVs, recordings), read with a size cap and only when regular.

`/dev/zero` or a multi-gigabyte file given as a site file used to hang the command or take all
memory: every such file is read here, at most `ENERGYHUB_MAX_FILE_BYTES` + 1 bytes (never all,
then checked), and a directory, device or socket is refused before it is read. A pipe (`<(...)`,
`/dev/stdin` from a pipe) is read like a file, up to the same cap. The problems are OSErrors
(EFBIG, EINVAL) whose `strerror` says what is wrong, so each caller's own "cannot read" error
names the file with them.

Files a user names for a command to write (`--out`) fail through `cannot_write`: one line naming
the option, the path and what went wrong (a full disk, a device where a directory must be).
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

DEFAULT_MAX_FILE_BYTES = 64 * 1024**2
"""The cap when no setting says otherwise: a site file of 10,000 meters is ~2 MB, a year of
15-minute plan inputs ~4 MB; 64 MiB of text already takes about a GB once parsed."""

MAX_FILE_SETTING = "ENERGYHUB_MAX_FILE_BYTES"

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _kind(mode: int) -> str:
    """What a path that is not a directory is, for an error message."""
    for test, kind in _KINDS:
        if test(mode):
            return kind
    return "a named pipe" if stat.S_ISFIFO(mode) else "a file"


def _not_a_directory(path: Path) -> tuple[Path, str] | None:
    """The first of `path`'s ancestors (or itself) that exists and is no directory, and what it
    is: what a `mkdir` that says "File exists" or "Not a directory" ran into."""
    for part in (*reversed(path.parents), path):
        try:
            mode = part.stat().st_mode
        except OSError:
            return None
        if not stat.S_ISDIR(mode):
            return part, _kind(mode)
    return None


def cannot_write(option: str, path: Path, exc: OSError, file: Path | None = None) -> str:
    """`--out /dev/full: no space left on device`: why a path the user named could not be
    written, from the OSError (a `mkdir` on a file said "File exists", which misled); `file` is
    the one being written under a directory `path`, for errors that name none (a full disk)."""
    where = f"{option} {path}"
    if isinstance(exc, FileExistsError | NotADirectoryError):
        found = _not_a_directory(Path(exc.filename or path))
        if found is not None:
            blocker, kind = found
            under = "" if blocker == path else f"{blocker}: "
            return f"{where}: {under}{kind}, not a directory"
    why = exc.strerror or str(exc)
    why = why[:1].lower() + why[1:]
    named = file if exc.filename is None else Path(exc.filename)
    return f"{where}: {named}: {why}" if named is not None and named != path else f"{where}: {why}"


def configured_max_bytes() -> int:
    """The cap from the settings (the default when they cannot be read: the command that reads
    them at its start has already named a bad value)."""
    from energyhub.config import load_settings
    from energyhub.errors import ConfigError

    try:
        return load_settings().max_file_bytes
    except ConfigError:
        return DEFAULT_MAX_FILE_BYTES


def size_text(n_bytes: int) -> str:
    """`67108864` as `64 MiB`, `1000` as `1000 bytes`."""
    for unit, size in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n_bytes >= size and n_bytes % size == 0:
            return f"{n_bytes // size} {unit}"
    return f"{n_bytes} bytes"


def too_large(limit_bytes: int) -> str:
    return f"larger than the {size_text(limit_bytes)} cap ({MAX_FILE_SETTING}={limit_bytes})"


def read_bytes(path: Path | str, limit_bytes: int | None = None) -> bytes:
    """At most `limit_bytes` of a regular file or pipe; OSError for anything else or more."""
    limit = configured_max_bytes() if limit_bytes is None else limit_bytes
    # O_NONBLOCK: opening a named FIFO no one writes to would wait forever; a device is not read
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
        for test, kind in _KINDS:
            if test(mode):
                raise OSError(errno.EINVAL, f"{kind}, not a regular file", str(path))
        if stat.S_ISREG(mode) and os.fstat(fd).st_size > limit:
            raise OSError(errno.EFBIG, too_large(limit), str(path))
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb", closefd=True) as handle:
            fd = -1
            data = handle.read(limit + 1)
    finally:
        if fd >= 0:
            os.close(fd)
    if len(data) > limit:
        raise OSError(errno.EFBIG, too_large(limit), str(path))
    return data


def read_text(
    path: Path | str,
    encoding: str = "utf-8",
    limit_bytes: int | None = None,
    newline: str | None = None,
) -> str:
    """`read_bytes` decoded as `Path.read_text` does (universal newlines unless `newline=""`)."""
    text = read_bytes(path, limit_bytes).decode(encoding)
    if newline is None:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text
