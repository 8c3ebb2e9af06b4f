"""-o writes only regular files (issue 24, finding 9): a device node, a FIFO
or a directory is refused in one line and left as it was; a file is
written atomically with the user's umask, not mkstemp's 0600."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tests.farm.cli.test_bad_input import assert_one_clean_error, materialize, run_in_process, seeded, snapshot  # noqa: F401

COMMANDS = {"report csv": ["report", "@sweep", "--format", "csv"], "report html": ["report", "@sweep", "--format", "html"],
            "report parquet": ["report", "@sweep", "--format", "parquet"],
            "fetch": ["fetch", "models/det.onnx"]}


def _run(seeded, args):
    cwd, env, home, job = seeded
    return run_in_process(materialize(args, cwd, job["sweep_id"]), {"FARM_HOME": str(home)}, cwd)


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_fifo_is_refused_and_left_a_fifo(command, seeded):
    cwd, env, home, job = seeded
    fifo = cwd / f"pipe-{command.replace(' ', '-')}"
    os.mkfifo(fifo)
    try:
        before = snapshot(cwd, home)
        code, _, stderr = _run(seeded, [*COMMANDS[command], "-o", str(fifo)])
        assert_one_clean_error(code, stderr, f"Error: {fifo} is a FIFO, not a regular file")
        assert stat.S_ISFIFO(os.stat(fifo).st_mode)
        assert snapshot(cwd, home) == before
    finally:
        fifo.unlink()


def _null_device(where):
    """A character device node like /dev/null (major 1, minor 3) of the
    test's own: code that replaced it would not break the host's /dev/null."""
    node = where / "null"
    try:
        os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("making a device node needs CAP_MKNOD")
    return node


@pytest.mark.parametrize("command", ["report csv", "report parquet", "fetch"])
def test_a_device_node_is_refused_and_stays_a_device(command, seeded, tmp_path):
    node = _null_device(tmp_path)
    before = os.stat(node)
    code, _, stderr = _run(seeded, [*COMMANDS[command], "-o", str(node)])
    assert_one_clean_error(code, stderr, f"Error: {node} is a character device, not a regular file")
    after = os.stat(node)
    assert stat.S_ISCHR(after.st_mode) and (after.st_ino, after.st_rdev) == (before.st_ino, before.st_rdev)
    assert os.listdir(tmp_path) == ["null"]


def test_dev_null_is_refused_before_anything_is_written(seeded):
    """The host's own /dev/null: refused by the check that runs before any
    work (the case above proves nothing replaces a node at write time)."""
    from farm.errors import UserError
    from farm.output_files import check_output

    with pytest.raises(UserError, match="/dev/null is a character device, not a regular file"):
        check_output(Path("/dev/null"))
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_a_link_to_a_device_is_refused(seeded, tmp_path):
    cwd, env, home, job = seeded
    link = cwd / "null-link"
    link.symlink_to(_null_device(tmp_path))
    try:
        code, _, stderr = _run(seeded, [*COMMANDS["fetch"], "-o", str(link)])
        assert_one_clean_error(code, stderr, f"Error: {link} is a character device, not a regular file")
        assert link.is_symlink()
    finally:
        link.unlink()


@pytest.mark.parametrize("command", list(COMMANDS))
def test_files_get_the_umask_permissions(command, seeded):
    cwd, env, home, job = seeded
    target = cwd / f"out-{command.replace(' ', '-')}"
    previous = os.umask(0o022)
    try:
        code, _, stderr = _run(seeded, [*COMMANDS[command], "-o", str(target)])
        assert code == 0, stderr
        assert stat.S_IMODE(target.stat().st_mode) == 0o644
        os.umask(0o077)
        code, _, stderr = _run(seeded, [*COMMANDS[command], "-o", str(target)])
        assert code == 0, stderr
        assert stat.S_IMODE(target.stat().st_mode) == 0o600
        assert not list(cwd.glob(".out-*.partial"))
    finally:
        os.umask(previous)
        target.unlink(missing_ok=True)


def test_a_link_to_a_file_is_written_through(seeded):
    cwd, env, home, job = seeded
    real = cwd / "real.csv"
    real.write_text("old\n")
    link = cwd / "link.csv"
    link.symlink_to(real)
    try:
        code, _, stderr = _run(seeded, [*COMMANDS["report csv"], "-o", str(link)])
        assert code == 0, stderr
        assert link.is_symlink() and real.read_text().startswith("job_id,")
    finally:
        link.unlink()
        real.unlink()
