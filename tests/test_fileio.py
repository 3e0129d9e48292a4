"""Atomic writes: whole or not at all, with the user's umask, and clear errors about the folder."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tpslab.fileio import atomic_folder, atomic_path, atomic_write_bytes


@pytest.fixture(params=[0o022, 0o077, 0o002])
def umask(request):
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def _mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def test_files_are_written_with_the_users_umask(tmp_path, umask):
    out = atomic_write_bytes(tmp_path / "a" / "data.bin", b"x")
    assert out.read_bytes() == b"x"
    assert _mode(out) == 0o666 & ~umask  # as open(..., "w") would make it, not mkstemp's 0600
    with atomic_path(tmp_path / "model.pt") as tmp:
        assert _mode(tmp) == 0o666 & ~umask
        tmp.write_bytes(b"y")
    assert _mode(tmp_path / "model.pt") == 0o666 & ~umask
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "model.pt"]  # no temporary left


def test_submission_zips_and_prediction_files_get_the_umask_too(tmp_path, umask):
    from tpslab.submission import write_prediction_files, write_submission_zip

    zipped = write_submission_zip(tmp_path / "submission.zip", {"a": "lunge"}, {"a": {}})
    assert _mode(zipped) == 0o666 & ~umask
    for path in write_prediction_files(tmp_path / "pred", {"a": "lunge"}, {"a": {}}):
        assert _mode(path) == 0o666 & ~umask


def test_a_failed_write_leaves_nothing_and_keeps_the_old_file(tmp_path):
    target = tmp_path / "keep.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("interrupted")
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["keep.bin"]


def test_writing_into_a_file_or_an_unwritable_folder_names_the_folder(tmp_path):
    (tmp_path / "plain").write_text("x")
    for target in (tmp_path / "plain" / "out.json", tmp_path / "plain" / "deeper" / "out.json"):
        with pytest.raises(NotADirectoryError) as e:
            atomic_write_bytes(target, b"{}")
        assert (e.value.filename, e.value.strerror) == (str(tmp_path / "plain"), "exists and is not a folder")
    assert (tmp_path / "plain").read_text() == "x"


def _unwritable_folder(tmp_path):
    """A folder this process cannot create files in: a read-only one, or /sys when running as root."""
    if os.geteuid() != 0:
        folder = tmp_path / "ro"
        folder.mkdir()
        folder.chmod(0o500)
        return folder
    if not os.path.isdir("/sys"):
        pytest.skip("root writes anywhere and there is no /sys")
    return Path("/sys")


def test_an_unwritable_folder_is_an_error_naming_it(tmp_path):
    folder = _unwritable_folder(tmp_path)
    try:
        with pytest.raises(PermissionError) as e:
            atomic_write_bytes(folder / "tpslab-test.json", b"{}")
        assert e.value.filename == str(folder)
        assert e.value.strerror.startswith("cannot create a file in this folder")
    finally:
        if folder != Path("/sys"):
            folder.chmod(0o700)
    assert not (folder / "tpslab-test.json").exists()


def test_a_folder_in_an_unwritable_folder_is_an_error_naming_that_folder(tmp_path):
    folder = _unwritable_folder(tmp_path)
    try:
        with pytest.raises(PermissionError) as e:
            with atomic_folder(folder / "out"):
                pass
        # the folder the user can act on, not the hidden temporary name tpslab chose in it
        assert e.value.filename == str(folder) and "partial" not in str(e.value)
        assert e.value.strerror.startswith("cannot create a folder in this folder")
    finally:
        if folder != Path("/sys"):
            folder.chmod(0o700)
    assert not (folder / "out").exists()



def test_a_folder_appears_whole_or_not_at_all(tmp_path, umask):
    with atomic_folder(tmp_path / "new" / "out") as tmp:
        assert tmp.name.startswith(f".out.partial-{os.getpid()}-") and _mode(tmp) == 0o777 & ~umask
        (tmp / "a.txt").write_text("a")
    assert (tmp_path / "new" / "out" / "a.txt").read_text() == "a" and _mode(tmp_path / "new" / "out") == 0o777 & ~umask
    with pytest.raises(RuntimeError), atomic_folder(tmp_path / "failed") as tmp:
        (tmp / "half").write_text("x")
        raise RuntimeError("interrupted")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new"]  # nothing left


def test_a_folder_goes_only_where_nothing_or_an_empty_folder_stands_unless_replaced(tmp_path):
    (tmp_path / "empty").mkdir()
    with atomic_folder(tmp_path / "empty", prefix=".tmp-x-") as tmp:
        assert tmp.name.startswith(".tmp-x-")
        (tmp / "a").write_text("a")
    assert os.listdir(tmp_path / "empty") == ["a"]
    with pytest.raises(OSError), atomic_folder(tmp_path / "empty") as tmp:  # not empty
        (tmp / "b").write_text("b")
    with atomic_folder(tmp_path / "empty", replace=True) as tmp:
        (tmp / "b").write_text("b")
    assert os.listdir(tmp_path / "empty") == ["b"] and sorted(os.listdir(tmp_path)) == ["empty"]
