"""Which device classes ``--device`` names, in best and fetch."""

from datetime import datetime
from pathlib import Path

import pytest

from farm.cli import main
from farm.db import Device, Job, Measurement, session_scope
from farm.reports import Constraints, find_best
from farm.devices import device_classes_matching
from seeding import CPU, H100, SWEEP

NVL = "gpu.nvidia-h100-nvl"
PAIRS = [("gpu.nvidia-a10", "NVIDIA A10"), ("gpu.nvidia-a100", "NVIDIA A100-SXM4-80GB"),
         ("gpu.nvidia-h100", "NVIDIA H100 80GB HBM3"), (NVL, "NVIDIA H100 NVL")]


@pytest.mark.parametrize("device, expected", [
    ("A10", {"gpu.nvidia-a10"}),  # the exact name, not also the A100
    ("gpu.nvidia-a10", {"gpu.nvidia-a10"}),
    ("a100", {"gpu.nvidia-a100"}),
    ("nvidia h100 nvl", {NVL}),
    ("H100", {"gpu.nvidia-h100", NVL}),  # whole word in both names
    ("80GB", {"gpu.nvidia-a100", "gpu.nvidia-h100"}),
    ("SXM4", {"gpu.nvidia-a100"}),
    ("h10", {"gpu.nvidia-h100", NVL}),  # no whole word: any part
    ("L4", set()),
])
def test_exact_class_or_name_wins_over_partial_matches(device, expected):
    assert device_classes_matching(PAIRS, device) == expected


@pytest.fixture
def with_nvl(known):
    """The known sweep plus one result on an H100 NVL, a second class whose name contains 'H100'."""
    with session_scope() as session:
        nvl = Device(uuid="GPU-2", kind="gpu", name="NVIDIA H100 NVL", device_class=NVL, host="h2")
        session.add(nvl)
        session.flush()
        source = session.get(Job, "j-fp16-b1")
        session.add(Job(id="j-nvl", sweep_id=SWEEP, seq=50, key="key-nvl", backend="tensorrt",
                        backend_version="10.0", precision="fp16", batch_size=1, profile="default",
                        device_class=NVL, config={}, status="done", attempts=1,
                        artifact_sha256=source.artifact_sha256, device_id=nvl.id, finished_at=datetime(2026, 1, 2, 1)))
        m = session.query(Measurement).filter_by(job_id="j-fp16-b1").one()
        copy = {c.name: getattr(m, c.name) for c in Measurement.__table__.columns if c.name not in ("id", "job_id")}
        session.add(Measurement(**{**copy, "job_id": "j-nvl", "device_id": nvl.id}))
    return known


def _farm(capsys, *args) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of ``farm ARGS`` run in this process, as a user sees it."""
    try:
        code = main(list(args))
    except SystemExit as exc:
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_best_takes_the_exact_device_and_lists_every_partial_match(with_nvl):
    for scope in (dict(sweep_id=SWEEP), dict(model="known.onnx")):
        def classes(device, scope=scope):
            best = find_best(**scope, constraints=Constraints(device=device))
            return sorted(set(best["device_class"]))

        assert classes("NVIDIA H100 NVL") == [NVL]
        assert classes("NVIDIA H100 80GB HBM3") == [H100]
        assert classes("h100") == [H100, NVL]
        assert classes("test cpu") == [CPU]


def test_fetch_refuses_a_device_that_names_several_classes(with_nvl, tmp_path, capsys):
    target = tmp_path / "engine.bin"
    code, out, err = _farm(capsys, "fetch", "--sweep", SWEEP, "--device", "h100", "-o", str(target))
    assert (code, out) == (1, "")
    assert err == f"Error: --device 'h100' matches several device classes ({H100}, {NVL}); give one of them\n"
    assert not target.exists()
    code, out, err = _farm(capsys, "fetch", "--sweep", SWEEP, "--device", "NVIDIA H100 NVL", "-o", str(target))
    assert (code, err) == (0, "")
    assert out.startswith(f"wrote {target} (sha256 ") and out.rstrip().endswith(f"for {NVL}")
    assert Path(target).read_bytes() == b"engine of j-fp16-b1"
