"""Where an engine runs, as recorded for ``farm fetch`` (farm.compat)."""

from __future__ import annotations

from farm.compat import incompatibility
from workers.backends.base import DeviceContext
from workers.backends.tensorrt_family.capabilities import TENSORRT, TENSORRT_RTX
from workers.backends.tensorrt_family.metadata import runs_on

H100 = DeviceContext(kind="gpu", name="NVIDIA H100", device_class="gpu.nvidia-h100", index=0,
                     compute_capability="9.0")
CPU = DeviceContext(kind="cpu", name="cpu", device_class="cpu.x86_64.test")


def device(kind, cc=None, name="dev", versions=None):
    # The shape workers/serve.py registers: versions.libraries, keyed by backend name.
    return {"kind": kind, "compute_capability": cc, "name": name, "device_class": f"{kind}.{name}",
            "versions": {"libraries": versions or {}}}


def test_full_tensorrt_engine_without_a_level_runs_only_on_the_build_gpu_model():
    info = {"runs_on": runs_on(TENSORRT, {"hardware_compatibility_level": "none"}, H100, "10.13.0.35")}
    assert info["runs_on"]["compute_capabilities"] == ["9.0"]
    assert info["runs_on"]["device_classes"] == ["gpu.nvidia-h100"]
    assert incompatibility(info, device("gpu", "9.0", "nvidia-h100")) is None
    # Same compute capability, another GPU model: TensorRT's default engines are not valid there.
    other = incompatibility(info, device("gpu", "9.0", "nvidia-gh200"))
    assert "runs only on gpu.nvidia-h100, not gpu.nvidia-gh200" in other
    assert "for sm_90; L4 has tensorrt (not installed) on sm_89; rebuild with `farm sweep submit SPEC --device " \
        "gpu.L4`" in incompatibility(info, device("gpu", "8.9", "L4"))
    assert "is not a GPU" in incompatibility(info, device("cpu"))


def test_same_compute_capability_level_runs_on_any_gpu_of_that_capability():
    info = {"runs_on": runs_on(TENSORRT, {"hardware_compatibility_level": "same_compute_capability"}, H100, "10.13")}
    assert "device_classes" not in info["runs_on"]
    assert incompatibility(info, device("gpu", "9.0", "nvidia-gh200")) is None


def test_ampere_plus_runs_on_newer_gpus():
    info = {"runs_on": runs_on(TENSORRT, {"hardware_compatibility_level": "ampere_plus"}, H100, "10.13.0.35")}
    assert incompatibility(info, device("gpu", "12.0")) is None
    assert incompatibility(info, device("gpu", "7.5", "T4")) is not None


def test_rtx_engine_built_on_a_cpu_runs_on_its_targets():
    info = {"runs_on": runs_on(TENSORRT_RTX, {"compute_capabilities": ["8.6", "12.0"]}, CPU, "1.7.1.116")}
    assert incompatibility(info, device("gpu", "8.6", "RTX A6000")) is None
    assert "for sm_86, sm_120; H100 has tensorrt-rtx (not installed) on sm_90" in incompatibility(
        info, device("gpu", "9.0", "H100"))
    current = runs_on(TENSORRT_RTX, {"compute_capabilities": ["current"]}, H100, "1.7.1.116")
    assert current["compute_capabilities"] == ["9.0"]


def test_version_match_exact_for_tensorrt_major_minor_for_rtx():
    trt = {"runs_on": runs_on(TENSORRT, {}, H100, "10.13.0.35")}
    assert incompatibility(trt, device("gpu", "9.0", "nvidia-h100", versions={"tensorrt": "10.13.0.35"})) is None
    assert "built with tensorrt 10.13.0.35 for sm_90; nvidia-h100 has tensorrt 10.13.3.9 on sm_90" in \
        incompatibility(trt, device("gpu", "9.0", "nvidia-h100", versions={"tensorrt": "10.13.3.9"}))
    compatible = {"runs_on": runs_on(TENSORRT, {"version_compatible": True}, H100, "10.13.0.35")}
    h100 = lambda v: device("gpu", "9.0", "nvidia-h100", versions={"tensorrt": v})  # noqa: E731
    assert incompatibility(compatible, h100("10.14.1.2")) is None
    assert incompatibility(compatible, h100("10.8.0.1")) is not None
    rtx = {"runs_on": runs_on(TENSORRT_RTX, {}, CPU, "1.7.1.116")}
    assert incompatibility(rtx, device("gpu", "8.9", versions={"tensorrt-rtx": "1.7.2.3"})) is None
    assert incompatibility(rtx, device("gpu", "8.9", versions={"tensorrt-rtx": "1.8.0.1"})) is not None
