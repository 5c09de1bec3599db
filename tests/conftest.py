"""Every fixture shared between test folders lives in tests/support/, registered here
as the suite's plugin; a folder's conftest holds only what that folder alone uses."""

pytest_plugins = ["tests.support.plugin"]
