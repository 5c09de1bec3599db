from tests.e2e.conftest import stack_factory  # noqa: F401 - shared fixture
