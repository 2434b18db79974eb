"""Files a user names are read with a cap and only when regular: `/dev/zero`, an endless pipe or a
huge file given as a site file, CSV or recording is one clear error naming the file and the cap,
in seconds, never a hang or all memory; a directory or device is refused before it is read."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from energyhub.carbon.asset_errors import AssetInputError
from energyhub.carbon.errors import IntensityFileError
from energyhub.carbon.intensity import read_intensity_csv
from energyhub.carbon.prices import read_price_csv
from energyhub.config import EXAMPLE_SITE_FILE
from energyhub.errors import EnergyhubError, SiteFileError
from energyhub.optimize.errors import PlanInputError
from energyhub.optimize.inputs import read_inputs
from energyhub.sites import load_site
from energyhub.userfiles import read_bytes
from simulators.errors import RecordFileError
from simulators.record import read_json_lines

CAP = 4096

READERS: dict[str, tuple[Callable[[Path], object], type[Exception]]] = {
    "site file": (load_site, SiteFileError),
    "carbon intensity CSV": (read_intensity_csv, IntensityFileError),
    "carbon price CSV": (read_price_csv, AssetInputError),
    "plan inputs CSV": (lambda p: read_inputs(p, ZoneInfo("UTC")), PlanInputError),
    "replay recording": (lambda p: read_json_lines(p, "record file"), RecordFileError),
}


def _energyhub(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "energyhub", *args],
        capture_output=True,
        text=True,
        timeout=60,  # the old code never returned for /dev/zero
        env={**os.environ, **(env or {})},
        cwd=Path(__file__).resolve().parent.parent,
    )


def test_sites_load_dev_zero_is_refused_at_once(pg_url: str) -> None:
    done = _energyhub("sites", "load", "/dev/zero", env={"ENERGYHUB_DB_URL": pg_url})
    assert done.returncode == 2
    assert "/dev/zero" in done.stderr and "character device, not a regular file" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_file_over_the_cap_names_the_file_and_the_setting(tmp_path: Path) -> None:
    huge = tmp_path / "huge.yaml"
    with huge.open("wb") as out:  # sparse: 3 GB on no disk
        out.truncate(3 * 1024**3)
    done = _energyhub("sites", "check", str(huge), env={"ENERGYHUB_MAX_FILE_BYTES": "1048576"})
    assert done.returncode == 2
    assert str(huge) in done.stderr
    assert "larger than the 1 MiB cap (ENERGYHUB_MAX_FILE_BYTES=1048576)" in done.stderr


@pytest.mark.parametrize("what", list(READERS))
def test_every_reader_keeps_to_the_cap(
    what: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENERGYHUB_MAX_FILE_BYTES", str(CAP))
    read, error = READERS[what]
    path = tmp_path / "big"
    path.write_text("x" * (CAP + 1))
    with pytest.raises(error) as raised:
        read(path)
    assert str(path) in str(raised.value) and f"MAX_FILE_BYTES={CAP})" in str(raised.value)
    with pytest.raises(error, match="character device, not a regular file"):
        read(Path("/dev/zero"))


def test_an_endless_pipe_is_read_to_the_cap_only(tmp_path: Path) -> None:
    """A FIFO that a writer fills without end: refused after cap + 1 bytes, the writer cut off."""
    fifo = tmp_path / "endless"
    os.mkfifo(fifo)
    sent = [0]

    def write() -> None:
        try:
            with fifo.open("wb") as out:
                while sent[0] < 64 * 1024**2:
                    out.write(b"a" * 65536)
                    sent[0] += 65536
        except BrokenPipeError:
            pass

    holder = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # lets the writer open it and start
    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    while not sent[0]:  # the writer has the FIFO open: the reader sees its data, not an EOF
        threading.Event().wait(0.01)
    try:
        with pytest.raises(OSError, match="larger than the 4 KiB cap"):
            read_bytes(fifo, CAP)
    finally:
        os.close(holder)
    writer.join(timeout=30)
    assert not writer.is_alive()
    assert sent[0] < 64 * 1024**2


def test_a_named_fifo_no_one_writes_to_does_not_hang(tmp_path: Path) -> None:
    fifo = tmp_path / "silent"
    os.mkfifo(fifo)
    with pytest.raises(EnergyhubError) as raised:
        load_site(fifo)
    assert str(fifo) in str(raised.value)


def test_within_the_cap_a_file_and_a_pipe_read_as_before(monkeypatch: pytest.MonkeyPatch) -> None:
    site = load_site(EXAMPLE_SITE_FILE)
    read_fd, write_fd = os.pipe()
    with os.fdopen(write_fd, "wb") as out:
        out.write(EXAMPLE_SITE_FILE.read_bytes())
    assert load_site(f"/proc/self/fd/{read_fd}") == site
    os.close(read_fd)
    monkeypatch.setenv("ENERGYHUB_MAX_FILE_BYTES", str(EXAMPLE_SITE_FILE.stat().st_size))
    assert load_site(EXAMPLE_SITE_FILE) == site
