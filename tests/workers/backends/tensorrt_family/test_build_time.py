"""TensorRT-family build_s is the time from the model to the engine,
preparation included (issue 24, finding 4): the fp16 conversion or Q/DQ
insertion took 1.6-14.7 s that build_s left out, while ONNX Runtime's
build_s includes its quantization."""

from __future__ import annotations

from farm.model_info import read_model
from farm.spec import MeasureConfig
from farm.store import open_store
from tests.onnx_models import make_cnn
from workers.backends import load_backend
from workers.backends.base import DeviceContext, JobContext

CPU = DeviceContext(kind="cpu", name="test CPU", device_class="cpu.x86_64.test")
SHAPES = {"images": {"min": [1, 3, 16, 16], "opt": [1, 3, 16, 16], "max": [2, 3, 16, 16]}}


def test_build_s_includes_the_fp16_preparation(rtx, farm_home, tmp_path):
    model = make_cnn(tmp_path / "cnn.onnx")
    ctx = JobContext(job_id="t", precision="fp16", batch_size=1, shapes=SHAPES, model_path=model,
                     model=read_model(model), measure=MeasureConfig(), calibration={"samples": 2, "seed": 0},
                     device=CPU, workdir=tmp_path, store=open_store())
    built = load_backend("tensorrt-rtx", {"builder_optimization_level": 0}).build(ctx)
    prepare_s, engine_s = built.info["prepare_s"], built.info["engine_build_s"]
    assert prepare_s > 0 and engine_s > 0
    assert built.build_s >= prepare_s + engine_s
