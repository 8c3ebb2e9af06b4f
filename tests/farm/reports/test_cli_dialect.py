"""One CLI dialect (farm.cli.dialect): the same format names, device
grammar and option names on every command; old spellings still work with
one deprecation line on stderr."""

from __future__ import annotations

import json

import click
import pytest
from click.testing import CliRunner

from farm.cli import cli
from farm.cli.dialect import device_selectors, one_device, renamed_option
from farm.errors import UserError
from seeding import SWEEP

# Commands that print nothing of their own: they become another program or serve pages.
NOT_PRINTING = {"worker start", "dashboard", "flower"}


def _leaves(group: click.Group, prefix: str = ""):
    for name, command in group.commands.items():
        path = f"{prefix}{name}"
        if isinstance(command, click.Group):
            yield from _leaves(command, path + " ")
        else:
            yield path, command


def _invoke(*args, code: int = 0):
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result


def test_every_printing_command_takes_format_table_and_json():
    checked = []
    for path, command in _leaves(cli):
        if path in NOT_PRINTING:
            continue
        [fmt] = [p for p in command.params if p.name == "fmt"] or [None]
        assert fmt is not None, f"farm {path} has no --format"
        assert fmt.opts == ["--format"] and fmt.default == "table", path
        assert {"table", "json"} <= set(fmt.type.choices) and "text" not in fmt.type.choices, path
        checked.append(path)
    assert {"backends", "store check", "sweep drive", "sweep submit", "fetch", "report", "best"} <= set(checked)


def test_spec_schema_takes_format_json():
    from farm.spec_schema import SPEC_SCHEMA

    for fmt in ("json", "table"):
        result = _invoke("spec", "schema", "--format", fmt)
        assert json.loads(result.stdout) == SPEC_SCHEMA and result.stderr == ""


def test_the_old_format_name_gives_the_same_output_and_one_line(known):
    for args in (("sweep", "status", SWEEP), ("sweep", "list")):
        table = _invoke(*args, "--format", "table")
        old = _invoke(*args, "--format", "text")
        assert old.stdout == table.stdout and table.stderr == ""
        assert old.stderr == "farm: --format text is deprecated; use --format table\n"


def test_backends_json_lists_what_the_table_says():
    from farm.backends import backend_names

    rows = json.loads(_invoke("backends", "--format", "json").stdout)
    assert [r["name"] for r in rows] == backend_names()
    ort = next(r for r in rows if r["name"] == "onnxruntime")
    assert ort["precisions"] == ["fp32", "int8", "model"] and ort["device_kinds"] == ["cpu"] and ort["missing"] == []
    assert ort["error"] is None and ort["version"]


def test_store_check_and_db_upgrade_in_json(farm_home):
    assert json.loads(_invoke("db", "upgrade", "--format", "json").stdout)["revision"]
    assert json.loads(_invoke("store", "check", "--format", "json").stdout)["usable"] is True


def test_device_selectors_one_grammar():
    assert device_selectors(["cpu,gpu.nvidia-l4", " H100 "]) == ("cpu", "gpu.nvidia-l4", "H100")
    assert one_device("all") is None and one_device(None) is None and one_device("H100") == "H100"
    with pytest.raises(UserError, match="one device selector"):
        one_device("gpu.a,gpu.b")


def test_old_device_name_any_is_all(capsys):
    assert device_selectors(["any"]) == ("all",)
    assert capsys.readouterr().err == "farm: --device any is deprecated; use --device all\n"


def test_worker_start_takes_names_and_classes_as_well_as_indices():
    from workers.discovery import DiscoveredDevice, select_devices

    cpu = DiscoveredDevice(uuid="cpu-0", kind="cpu", name="AMD EPYC", device_class="cpu.x86_64.amd-epyc", host="h")
    h100 = DiscoveredDevice(uuid="GPU-a", kind="gpu", name="NVIDIA H100 80GB HBM3", index=0, host="h",
                            device_class="gpu.nvidia-h100-80gb-hbm3")
    l4 = DiscoveredDevice(uuid="GPU-b", kind="gpu", name="NVIDIA L4", device_class="gpu.nvidia-l4", index=1, host="h")
    devices = [cpu, h100, l4]
    assert select_devices(devices, "H100") == [h100]
    assert select_devices(devices, "gpu.nvidia-l4,cpu") == [l4, cpu]
    assert select_devices(devices, "1") == [l4] and select_devices(devices, "GPU-a") == [h100]
    assert select_devices(devices, "all") == devices == select_devices(devices, "any")
    with pytest.raises(UserError, match="matches no device"):
        select_devices(devices, "7")  # a number is an index, never a part of a name (h100 holds a 1)


def test_spec_devices_all_resolves_like_any(farm_home):
    from farm.db import session_scope, upgrade
    from farm.devices import resolve_device_classes

    upgrade()
    with session_scope() as session:
        assert resolve_device_classes(["all"], session) == resolve_device_classes(["any"], session)


def test_a_renamed_option_takes_its_old_name_once():
    @click.command()
    @click.option("--host", default="127.0.0.1")
    @renamed_option("--address", "--host", "host")
    def serve(host):
        click.echo(host)

    result = CliRunner().invoke(serve, ["--address", "0.0.0.0"])
    assert (result.exit_code, result.stdout, result.stderr) == (
        0, "0.0.0.0\n", "farm: --address is deprecated; use --host\n")
    assert CliRunner().invoke(serve, []).stdout == "127.0.0.1\n"
    both = CliRunner().invoke(serve, ["--address", "a", "--host", "b"])
    assert both.exit_code == 1 and "give --host or --address (its old name), not both" in str(both.exception)


def test_submit_takes_the_old_devices_flag(farm_home, tiny_cnn):
    args = ["sweep", "submit", "--model", str(tiny_cnn), "--precision", "fp32", "--batch", "1", "--format", "json",
            "--profile", "p:images=1x3x32x32/1x3x32x32/1x3x32x32"]
    new = _invoke(*args, "--device", "cpu")
    old = _invoke(*args, "--devices", "cpu", "--force")
    assert new.stderr == "" and old.stderr == "farm: --devices is deprecated; use --device\n"
    assert json.loads(new.stdout)["jobs"] == json.loads(old.stdout)["jobs"] == 1
