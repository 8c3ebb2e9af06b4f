"""``measure.streams`` and the ``streams: [1, 2, 4]`` sweep axis."""

from __future__ import annotations

import pytest

from farm.errors import SpecError
from farm.expand import expand
from farm.model_info import read_model
from farm.spec import MeasureConfig, parse_spec


def plans(model, **raw):
    spec = parse_spec({"model": str(model), "batch_sizes": [1], **raw})
    return expand(spec, read_model(model), ["cpu.x86_64.test"])


def test_streams_axis_makes_one_job_per_value(tiny_cnn):
    jobs = plans(tiny_cnn, streams=[1, 2, 4], profiles=[{"name": "p", "inputs": {
        "images": {"min": [1, 3, 32, 32], "opt": [1, 3, 32, 32], "max": [1, 3, 32, 32]}}}])
    assert [MeasureConfig(**j.config["measure"]).streams for j in jobs] == [1, 2, 4]
    assert len({j.key for j in jobs}) == 3


def test_default_streams_keep_the_key_jobs_had_before_the_knob(tiny_cnn):
    profiles = [{"name": "p", "inputs": {"images": {"min": [1, 3, 32, 32], "opt": [1, 3, 32, 32],
                                                    "max": [1, 3, 32, 32]}}}]
    (plain,) = plans(tiny_cnn, profiles=profiles)
    assert "streams" not in plain.config["measure"] and "layer_profile" not in plain.config["measure"]
    (one,) = plans(tiny_cnn, profiles=profiles, streams=[1])
    (two,) = plans(tiny_cnn, profiles=profiles, measure={"streams": 2, "layer_profile": True})
    assert one.key == plain.key and two.key != plain.key
    assert two.config["measure"]["streams"] == 2 and two.config["measure"]["layer_profile"] is True


@pytest.mark.parametrize("raw, message", [
    ({"streams": [0]}, "spec field 'streams[0]'"),
    ({"measure": {"streams": 65}}, "spec field 'measure.streams'"),
    ({"measure": {"layer_profile": "yes"}}, "spec field 'measure.layer_profile'"),
])
def test_bad_streams_are_refused(tiny_cnn, raw, message):
    with pytest.raises(SpecError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_spec({"model": str(tiny_cnn), **raw})
