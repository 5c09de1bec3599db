# The in-process gateway in front of the fake TasksService.
from tests.gateway.conftest import anon, backend, fake, gateway, make_gateway  # noqa: F401
