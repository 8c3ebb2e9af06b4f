"""Spec ``devices`` selectors: which registered device classes they name."""

import pytest

from farm.db import Device, session_scope
from farm.devices import resolve_device_classes
from farm.errors import SpecError

GPUS = {"gpu.nvidia-a10": "NVIDIA A10", "gpu.nvidia-a100-sxm4-80gb": "NVIDIA A100-SXM4-80GB",
        "gpu.nvidia-h100-80gb-hbm3": "NVIDIA H100 80GB HBM3", "gpu.nvidia-h100-nvl": "NVIDIA H100 NVL"}


@pytest.fixture
def fleet(farm_home):
    with session_scope() as session:
        session.add_all(Device(uuid=f"GPU-{i}", kind="gpu", name=name, device_class=cls, host="h")
                        for i, (cls, name) in enumerate(GPUS.items()))
    return farm_home


@pytest.mark.parametrize("selectors, expected", [
    (["A10"], ["gpu.nvidia-a10"]),  # not also the A100
    (["a100"], ["gpu.nvidia-a100-sxm4-80gb"]),
    (["H100"], ["gpu.nvidia-h100-80gb-hbm3", "gpu.nvidia-h100-nvl"]),
    (["NVIDIA H100 NVL"], ["gpu.nvidia-h100-nvl"]),
    (["h100-nvl", "A10"], ["gpu.nvidia-h100-nvl", "gpu.nvidia-a10"]),
    (["80gb"], ["gpu.nvidia-a100-sxm4-80gb", "gpu.nvidia-h100-80gb-hbm3"]),
    (["gpu.nvidia-l4"], ["gpu.nvidia-l4"]),  # an exact class may precede its workers
    (["gpu"], sorted(GPUS)),
])
def test_selectors_name_the_intended_classes(fleet, selectors, expected):
    with session_scope() as session:
        assert resolve_device_classes(selectors, session) == expected


def test_a_selector_that_names_nothing_is_a_spec_error(fleet):
    with session_scope() as session, pytest.raises(SpecError, match="no device matches 'L4'"):
        resolve_device_classes(["L4"], session)
