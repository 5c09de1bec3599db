from tests.e2e.conftest import running_stack, stack_factory  # noqa: F401
