"""Spec input shared by ``farm run`` and ``farm sweep submit``: a YAML file
or the equivalent flags."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import click

from farm.cli.dialect import device_selectors, renamed_option
from farm.errors import SpecError
from farm.search.config import with_strategy
from farm.spec import SweepSpec, load_spec, parse_profile_flag, parse_spec


def spec_options(func):
    options = [
        click.argument("spec_file", required=False, type=click.Path(dir_okay=False, path_type=Path)),
        click.option("--model", help="ONNX model file (instead of a spec file)."),
        click.option("--name", help="Sweep name (default: the model's file name)."),
        click.option("--backend", "backends", multiple=True, help="Backend; repeat for several."),
        click.option("--precision", "precisions", multiple=True, help="fp32|fp16|bf16|int8|fp8; repeatable."),
        click.option("--batch", "batch_sizes", multiple=True, type=int, help="Batch size; repeatable."),
        click.option("--profile", "profiles", multiple=True,
                     help="NAME:input=MIN/OPT/MAX[;input2=...], shapes like 1x3x224x224; repeatable."),
        click.option("--device", "devices", multiple=True,
                     help="all|cpu|gpu|device class|GPU name; repeatable or comma-separated."),
        click.option("--warmup-ms", type=float, help="Warm-up time (default 200)."),
        click.option("--duration-ms", type=float, help="Minimum measured time (default 3000)."),
        click.option("--iterations", type=int, help="Minimum measured iterations (default 10)."),
        click.option("--search", "search", metavar="brute|quick|bayes",
                     help="Search strategy (default brute: build everything); also with a spec file, "
                          "over its 'search:' block."),
        click.option("--budget", help="Most configurations the search builds: a count or a share like 20%."),
    ]
    for option in reversed(options):
        func = option(func)
    return renamed_option("--devices", "--device", "devices", multiple=True)(func)


def spec_from_cli(spec_file, model, name, backends, precisions, batch_sizes, profiles, devices,
                  warmup_ms, duration_ms, iterations, search=None, budget=None) -> SweepSpec:
    spec = _spec_from_cli(spec_file, model, name, backends, precisions, batch_sizes, profiles,
                          device_selectors(devices), warmup_ms, duration_ms, iterations)
    chosen = with_strategy(spec.search, search, budget)
    return spec if chosen is spec.search else replace(spec, search=chosen)


def _spec_from_cli(spec_file, model, name, backends, precisions, batch_sizes, profiles, devices,
                   warmup_ms, duration_ms, iterations) -> SweepSpec:
    flags_given = any([model, name, backends, precisions, batch_sizes, profiles, devices,
                       warmup_ms is not None, duration_ms is not None, iterations is not None])
    if spec_file and model:
        raise SpecError("give a spec file or --model, not both")
    if spec_file:
        if flags_given:
            raise SpecError("flags cannot be combined with a spec file; put them in the file")
        return load_spec(spec_file)
    if not model:
        raise SpecError("give a spec file or --model MODEL.onnx")
    raw: dict = {"model": model}
    if name:
        raw["name"] = name
    for key, value in (("backends", backends), ("precisions", precisions), ("batch_sizes", batch_sizes),
                       ("devices", devices)):
        if value:
            raw[key] = list(value)
    if profiles:
        raw["profiles"] = [parse_profile_flag(p) for p in profiles]
    measure = {k: v for k, v in (("warmup_ms", warmup_ms), ("duration_ms", duration_ms),
                                 ("iterations", iterations)) if v is not None}
    if measure:
        raw["measure"] = measure
    return parse_spec(raw, base_dir=None)
