"""`hold_gateway_lock`: one holder per data directory, released when the holder lets go."""

from __future__ import annotations

import os

import pytest

from lynkr._gateway_lock import LOCK_NAME, hold_gateway_lock
from lynkr.errors import StartupError


def test_the_lock_file_names_its_holder(tmp_path):
    """The holder's pid is written into `gateway.lock`, creating the directory."""
    with hold_gateway_lock(tmp_path / "data") as path:
        assert path == tmp_path / "data" / LOCK_NAME
        assert path.read_text() == f"{os.getpid()}\n"


def test_a_second_holder_is_refused_with_the_first_ones_pid(tmp_path):
    """While the lock is held, taking it again is a StartupError naming the holder."""
    with (hold_gateway_lock(tmp_path), pytest.raises(StartupError) as caught,
          hold_gateway_lock(tmp_path)):
        pass
    assert f"another gateway (pid {os.getpid()}) is using data directory" in str(caught.value)


def test_the_lock_is_free_again_once_released(tmp_path):
    """Leaving the block releases the lock; the file left behind blocks nobody."""
    with hold_gateway_lock(tmp_path):
        pass
    with hold_gateway_lock(tmp_path) as path:
        assert path.exists()


def test_an_unusable_data_directory_is_a_startup_error(tmp_path):
    """A data directory that cannot be created is one line naming it."""
    (tmp_path / "file").write_text("")
    with (pytest.raises(StartupError, match="cannot use data directory"),
          hold_gateway_lock(tmp_path / "file" / "data")):
        pass
