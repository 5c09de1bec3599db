from tests.e2e.conftest import running_stack, stack_factory  # noqa: F401

# The in-process gateway in front of the fake TasksService (readiness of `taskmesh up`).
from tests.gateway.conftest import backend, gateway, make_gateway  # noqa: F401
