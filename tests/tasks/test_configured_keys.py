"""SPEC §4: any configured key of 16-200 printable ASCII characters works; the
``tm_`` prefix is only what taskmesh generates. Keys that cannot be keys are
refused at start with one line naming the variable."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.tasks.domain.users import UserService
from services.tasks.storage.repository import Store
from taskmesh import errors
from taskmesh.api_keys import valid_key
from taskmesh.settings import Settings

CONFIGURED_KEYS = {
    "the issue's": "devkey-0123456789abcdef",
    "exactly 16": "abcdefghijklmnop",
    "exactly 200": "k" * 200,
    "inner spaces and punctuation": "correct horse battery staple! #1",
    "every printable": "".join(chr(c) for c in range(0x21, 0x7F))[:150],
    "base64 padding": "QUJDREVGR0hJSktMTU5PUA==",
    "generated shape": "tm_" + "A" * 43,
}
NOT_KEYS = {
    "15 characters": "abcdefghijklmno",
    "201 characters": "k" * 201,
    "non-ASCII": "clé-de-développement-1",
    "a control character": "devkey-0123456789\tabcdef",
}


@pytest.fixture
async def store(tmp_path):
    store = Store(f"sqlite+aiosqlite:///{tmp_path}/t.db")
    await store.open()
    yield store
    await store.close()


@pytest.mark.parametrize("key", CONFIGURED_KEYS.values(), ids=CONFIGURED_KEYS.keys())
async def test_a_configured_dev_key_authenticates(store: Store, key: str) -> None:
    users = UserService(store)
    assert await users.ensure_dev_user(key)
    user = await users.authenticate(key)
    assert user.name == "dev"


@pytest.mark.parametrize("key", CONFIGURED_KEYS.values(), ids=CONFIGURED_KEYS.keys())
async def test_the_shown_prefix_keeps_most_of_a_short_key_secret(store: Store, key: str) -> None:
    users = UserService(store)
    await users.create("someone", key)
    (row,) = await users.list()
    assert key.startswith(row.prefix)
    assert len(row.prefix) <= min(12, len(key) // 2)
    assert len(key) - len(row.prefix) >= 8


@pytest.mark.parametrize("key", CONFIGURED_KEYS.values(), ids=CONFIGURED_KEYS.keys())
async def test_a_configured_key_is_revoked_by_itself_or_its_prefix(store: Store, key: str) -> None:
    users = UserService(store)
    await users.create("by-key", key)
    await users.revoke(key)
    with pytest.raises(errors.Unauthenticated):
        await users.authenticate(key)
    other = key[::-1] if key[::-1] != key else key[:-1] + "X"
    await users.create("by-prefix", other)
    (row,) = [r for r in await users.list() if r.user_name == "by-prefix"]
    if len(row.prefix) >= 8:
        await users.revoke(row.prefix)
        with pytest.raises(errors.Unauthenticated):
            await users.authenticate(other)


@pytest.mark.parametrize("key", NOT_KEYS.values(), ids=NOT_KEYS.keys())
async def test_what_cannot_be_a_key_never_authenticates(store: Store, key: str) -> None:
    assert not valid_key(key)
    users = UserService(store)
    with pytest.raises(errors.InvalidInput):
        await users.create("someone", key)
    with pytest.raises(errors.Unauthenticated):
        await users.authenticate(key)


@pytest.mark.parametrize(
    "key", [*NOT_KEYS.values(), " leading-space-key-01", "trailing-space-key-01 "]
)
def test_settings_refuse_a_dev_key_that_cannot_work(key: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(_env_file=None, taskmesh_dev_api_key=key)  # type: ignore[call-arg]
    assert caught.value.errors()[0]["loc"] == ("taskmesh_dev_api_key",)


@pytest.mark.parametrize("key", CONFIGURED_KEYS.values(), ids=CONFIGURED_KEYS.keys())
def test_settings_accept_any_valid_dev_key(key: str) -> None:
    settings = Settings(_env_file=None, taskmesh_dev_api_key=key)  # type: ignore[call-arg]
    assert settings.taskmesh_dev_api_key is not None
    assert settings.taskmesh_dev_api_key.get_secret_value() == key
