"""Root pytest configuration shared by unit, twin and integration tests."""

from __future__ import annotations

import sys

import pytest
from ansible import context
from ansible.utils.context_objects import CLIArgs

# Fixtures of the local platform twin (model-engine API, S3, pods), usable from every test.
pytest_plugins = ["tests.twin.tests.conftest_platform"]


@pytest.fixture(scope="session")
def localhost_inventory(tmp_path_factory):
    """An inventory where localhost runs modules with this interpreter (the venv's), like the
    collection's own inventories do with ansible_playbook_python."""
    path = tmp_path_factory.mktemp("inventory") / "hosts.ini"
    path.write_text("localhost ansible_connection=local ansible_python_interpreter=%s\n" % sys.executable)
    return str(path)


def _localhost(request, inventory, **kwargs):
    plugin = request.config.pluginmanager.getplugin("ansible")
    return plugin.initialize(request.config, request, inventory=inventory, connection="local",
                             host_pattern="localhost", **kwargs).localhost


@pytest.fixture
def localhost(request, localhost_inventory):
    """pytest-ansible's localhost host manager, on the test interpreter (overrides the plugin's)."""
    return _localhost(request, localhost_inventory)


@pytest.fixture
def localhost_check(request, localhost_inventory):
    """The same, with every module run in check mode, as ``ansible --check`` would.

    pytest-ansible builds its ad-hoc CLI arguments without --check, so the parsed arguments are
    replaced by a copy with check=True right after it parsed them (the next normal run parses again
    and gets the global arguments back).
    """
    host = _localhost(request, localhost_inventory)
    configure = host._configure_adhoc_cli

    def configure_with_check():
        configure()
        context.CLIARGS = CLIArgs(dict(context.CLIARGS, check=True))

    host._configure_adhoc_cli = configure_with_check
    return host
