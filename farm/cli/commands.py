"""The ``farm`` command group; each sub-group lives in its own module."""

from __future__ import annotations

import click

from farm import __version__
from farm.cli.backends_cmd import backends_cmd
from farm.cli.admin_cmd import db_group, devices_cmd, spec_group, worker_group, workers_cmd
from farm.cli.compare_cmd import compare_cmd
from farm.cli.dashboard_cmd import dashboard_cmd
from farm.cli.export_cmd import export_cmd
from farm.cli.results_cmd import best_cmd, fetch_cmd, report_cmd
from farm.cli.run_cmd import run_cmd
from farm.cli.flower_cmd import flower_cmd
from farm.cli.store_cmd import store_group
from farm.cli.sweep_cmd import sweep_group


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="farm")
def cli() -> None:
    """Engine Farm: build and benchmark inference engines across a GPU fleet.

    Settings come from the environment: FARM_HOME (default ./.farm),
    FARM_DB_URL (default SQLite under FARM_HOME), FARM_BROKER_URL (default an
    embedded broker under FARM_HOME; redis://... for a farm) and
    FARM_STORE_URL (default FARM_HOME/artifacts; s3://bucket/prefix).
    """


for command in (run_cmd, sweep_group, worker_group, workers_cmd, devices_cmd, report_cmd, best_cmd,
                fetch_cmd, compare_cmd, db_group, store_group, spec_group, dashboard_cmd, flower_cmd,
                backends_cmd, export_cmd):
    cli.add_command(command)
