from __future__ import annotations

import pytest

from farm.errors import SpecError
from farm.expand import expand, job_key
from farm.model_info import read_model
from farm.spec import parse_profile_flag, parse_spec
from tests.onnx_models import make_cnn, make_token_model

PROFILE = {"name": "p64", "inputs": {"images": {"min": [1, 3, 32, 32], "opt": [4, 3, 64, 64], "max": [8, 3, 64, 64]}}}
PROFILE_OPT_BATCH = 4


def plans_for(model_path, **overrides):
    raw = {"model": str(model_path), "precisions": ["fp32", "int8"], "batch_sizes": [1, 8], "profiles": [PROFILE]}
    raw.update(overrides)
    raw = {key: value for key, value in raw.items() if value is not None}  # None: leave the key out
    return expand(parse_spec(raw), read_model(model_path), ["cpu.x86_64.test"])


def test_one_job_per_combination_with_the_batch_applied(tiny_cnn):
    plans = plans_for(tiny_cnn)
    assert [(p.precision, p.batch_size) for p in plans] == [("fp32", 1), ("fp32", 8), ("int8", 1), ("int8", 8)]
    assert plans[1].shapes == {"images": {"min": [8, 3, 32, 32], "opt": [8, 3, 64, 64], "max": [8, 3, 64, 64]}}


def test_keys_are_stable_and_change_with_any_setting(tiny_cnn):
    first, second = plans_for(tiny_cnn), plans_for(tiny_cnn)
    assert [p.key for p in first] == [p.key for p in second]
    assert len({p.key for p in first}) == 4
    slower = plans_for(tiny_cnn, measure={"duration_ms": 10})
    assert {p.key for p in slower}.isdisjoint({p.key for p in first})
    assert job_key({"a": 1, "b": 2}) == job_key({"b": 2, "a": 1})


def test_key_covers_model_hash_and_device_but_not_the_submitters_libraries(tiny_cnn, tmp_path):
    other = make_cnn(tmp_path / "other.onnx", seed=1)
    base = plans_for(tiny_cnn)[0].config
    assert plans_for(other)[0].config["model_sha256"] != base["model_sha256"]
    assert "backend_version" not in base  # versions are the workers' (checked at reuse), not this host's
    spec = parse_spec({"model": str(tiny_cnn), "profiles": [PROFILE]})
    gpu = expand(spec, read_model(tiny_cnn), ["gpu.nvidia-l4"])[0]
    assert len({gpu.key, plans_for(tiny_cnn)[0].key, plans_for(other)[0].key}) == 3


def test_workload_is_model_and_profile_shapes_with_batch_free(tiny_cnn, tmp_path):
    wide = {"name": "wide", "inputs": {"images": {"min": [1, 3, 32, 64], "opt": [4, 3, 64, 128],
                                                  "max": [8, 3, 64, 128]}}}
    plans = plans_for(tiny_cnn, profiles=[PROFILE, wide])
    by_profile = {}
    for plan in plans:
        by_profile.setdefault(plan.profile_name, set()).add(plan.workload)
    assert {k: len(v) for k, v in by_profile.items()} == {"p64": 1, "wide": 1}  # batch 1 and 8 share one
    assert by_profile["p64"] != by_profile["wide"] and next(iter(by_profile["p64"])).startswith("p64:")
    renamed_same_name = dict(PROFILE, inputs={"images": {"min": [1, 3, 32, 32], "opt": [4, 3, 48, 48],
                                                         "max": [8, 3, 64, 64]}})
    assert plans_for(tiny_cnn, profiles=[renamed_same_name])[0].workload not in by_profile["p64"]
    other = make_cnn(tmp_path / "other.onnx", seed=1)
    assert plans_for(other)[0].workload not in by_profile["p64"]


def test_batch_outside_every_profile_is_an_error(tiny_cnn):
    with pytest.raises(SpecError, match=r"batch size 16 fits no profile \('p64' allows batch 1..8\)"):
        plans_for(tiny_cnn, batch_sizes=[1, 16])


def test_profile_shapes_are_checked_against_the_model(tiny_cnn, tmp_path):
    wrong_rank = {"name": "p", "inputs": {"images": {"min": [1, 3, 32], "opt": [1, 3, 32], "max": [1, 3, 32]}}}
    with pytest.raises(SpecError, match=r"rank 3 does not match model input 'images' of rank 4"):
        plans_for(tiny_cnn, profiles=[wrong_rank], batch_sizes=[1])
    fixed = make_cnn(tmp_path / "fixed.onnx", dynamic_hw=False)
    bad = {"name": "p", "inputs": {"images": {"min": [1, 3, 64, 64], "opt": [1, 3, 64, 64], "max": [1, 3, 64, 64]}}}
    with pytest.raises(SpecError, match=r"dimension 2 is fixed to 32 in the model \(dims \[batch, 3, 32, 32\]\), "
                                        r"profile gives \[64\]"):
        plans_for(fixed, profiles=[bad], batch_sizes=[1])
    unknown = {"name": "p", "inputs": {"pixels": PROFILE["inputs"]["images"]}}
    with pytest.raises(SpecError, match=r"the model has no input 'pixels' \(inputs: images\)"):
        plans_for(tiny_cnn, profiles=[unknown], batch_sizes=[1])


def test_dynamic_dims_need_a_profile_but_batch_alone_does_not(tiny_cnn, tmp_path):
    with pytest.raises(SpecError, match=r"no profiles given\) gives no shape for model input 'images', which has "
                                        r"dims \[batch, 3, height, width\], dynamic beyond the batch axis"):
        plans_for(tiny_cnn, profiles=[])
    with pytest.raises(SpecError) as refused:
        plans_for(tiny_cnn, profiles=[], batch_sizes=[2, 4])
    example = "p:images=2x3x32x32/4x3x64x64/4x3x128x128"
    assert str(refused.value).endswith(f"add it to the profile, e.g. --profile '{example}' (min/opt/max)")
    plans = plans_for(tiny_cnn, profiles=[parse_profile_flag(example)], batch_sizes=[2, 4])  # the example works
    assert [p.shapes["images"]["opt"] for p in plans[:2]] == [[2, 3, 64, 64], [4, 3, 64, 64]]
    fixed_hw = make_cnn(tmp_path / "fixed.onnx", dynamic_hw=False)
    plans = plans_for(fixed_hw, profiles=[], batch_sizes=[2])
    assert plans[0].shapes["images"]["opt"] == [2, 3, 32, 32] and plans[0].profile_name == "default"


def test_fixed_batch_models_run_only_their_batch(tmp_path):
    fixed = make_cnn(tmp_path / "b1.onnx", dynamic_hw=False, fixed_batch=1)
    assert len(plans_for(fixed, profiles=[], batch_sizes=[1])) == 2
    with pytest.raises(SpecError, match="batch size 4 fits no profile"):
        plans_for(fixed, profiles=[], batch_sizes=[4])


def test_integer_inputs_keep_their_type(tmp_path):
    model = read_model(make_token_model(tmp_path / "tok.onnx"))
    assert model.inputs[0].dtype == "int64" and model.inputs[0].dims == ("batch", "sequence")


def test_models_with_external_data_are_read_as_one_model(tmp_path):
    import onnx

    model = onnx.load(str(make_cnn(tmp_path / "one.onnx")))
    onnx.save(model, str(tmp_path / "ext.onnx"), save_as_external_data=True, location="ext.bin", size_threshold=0)
    info = read_model(tmp_path / "ext.onnx")  # refusals of locations outside the folder: test_model_bundle.py
    assert [f.location for f in info.data_files] == ["ext.bin"] and info.inputs == read_model(tmp_path / "one.onnx").inputs


def test_an_input_without_a_declared_shape_takes_the_profiles(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "noshape",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, None)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    path = tmp_path / "noshape.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    assert read_model(path).inputs[0].dims is None
    with pytest.raises(SpecError, match=r"gives no shape for model input 'x', which declares no shape in the model"):
        expand(parse_spec({"model": str(path)}), read_model(path), ["cpu.test"])
    profile = {"name": "p", "inputs": {"x": {"min": [1, 3, 8, 8], "opt": [2, 3, 8, 8], "max": [4, 3, 8, 8]}}}
    plans = expand(parse_spec({"model": str(path), "profiles": [profile], "batch_sizes": [2]}), read_model(path),
                   ["cpu.test"])
    assert plans[0].shapes["x"]["opt"] == [2, 3, 8, 8]


def test_string_inputs_need_real_samples(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    from farm.service import validate

    graph = helper.make_graph([helper.make_node("Identity", ["text"], ["out"])], "strings",
                              [helper.make_tensor_value_info("text", TensorProto.STRING, ["batch"])],
                              [helper.make_tensor_value_info("out", TensorProto.STRING, ["batch"])])
    path = tmp_path / "strings.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    with pytest.raises(SpecError, match=r"model input 'text' has type string, for which the farm cannot make "
                                        r"synthetic inputs; give real samples with 'data: samples.npz'"):
        validate(parse_spec({"model": str(path)}))


def test_every_input_missing_from_the_profile_is_named_with_one_example(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    inputs = [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "seq"]) for n in ("ids", "mask")]
    graph = helper.make_graph([helper.make_node("Add", ["ids", "mask"], ["y"])], "tokens", inputs,
                              [helper.make_tensor_value_info("y", TensorProto.INT64, ["batch", "seq"])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / "tokens.onnx"
    onnx.save(model, path)
    with pytest.raises(SpecError) as refused:
        plans_for(path, profiles=[], batch_sizes=[1, 8], precisions=["fp32"])
    example = "p:ids=1x32/8x64/8x128;mask=1x32/8x64/8x128"
    assert str(refused.value) == (
        "the spec (no profiles given) gives no shape for model inputs 'ids' (which has dims [batch, seq], dynamic "
        "beyond the batch axis), 'mask' (which has dims [batch, seq], dynamic beyond the batch axis); add them to "
        f"the profile, e.g. --profile '{example}' (min/opt/max)")
    plans = plans_for(path, profiles=[parse_profile_flag(example)], batch_sizes=[1, 8], precisions=["fp32"])
    assert [p.shapes["mask"]["opt"] for p in plans] == [[1, 64], [8, 64]]


def test_without_batch_sizes_a_sweep_runs_the_models_own_batch(tmp_path, tiny_cnn):
    fixed = make_cnn(tmp_path / "b4.onnx", dynamic_hw=False, fixed_batch=4)
    assert [p.batch_size for p in plans_for(fixed, profiles=[], batch_sizes=None, precisions=["fp32"])] == [4]
    plans = plans_for(tiny_cnn, batch_sizes=None, precisions=["fp32"])  # a dynamic batch: the profile's opt
    assert [(p.batch_size, p.shapes["images"]["opt"][0]) for p in plans] == [(PROFILE_OPT_BATCH,) * 2]
    plans = plans_for(make_cnn(tmp_path / "hw.onnx", dynamic_hw=False), profiles=[], batch_sizes=None,
                      precisions=["fp32"])
    assert [p.batch_size for p in plans] == [1]  # no profile: batch 1
    with pytest.raises(SpecError, match=r"batch size 1 fits no profile \(the model's batch is fixed to 4\)"):
        plans_for(fixed, profiles=[], batch_sizes=[1])


def test_a_static_model_whose_inputs_share_no_leading_dim_runs_as_declared(tmp_path):
    """ONNX's expand test model: data [1, 3, 1] and a shape tensor [2]."""
    import onnx
    from onnx import TensorProto, helper

    inputs = [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 3, 1]),
              helper.make_tensor_value_info("shape", TensorProto.INT64, [2])]
    graph = helper.make_graph([helper.make_node("Expand", ["X", "shape"], ["Y"])], "expand", inputs,
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, tmp_path / "expand.onnx")
    (plan,) = plans_for(tmp_path / "expand.onnx", profiles=[], batch_sizes=None, precisions=["fp32"])
    assert plan.batch_size == 1
    assert {k: v["opt"] for k, v in plan.shapes.items()} == {"X": [1, 3, 1], "shape": [2]}
