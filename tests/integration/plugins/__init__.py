"""Test-only backend plugins, registered through FARM_EXTRA_BACKENDS."""
