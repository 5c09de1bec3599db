"""Users and API keys (``ports.UsersTx``): their statements beside the methods."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from services.tasks.domain import models as m
from services.tasks.domain.ports import DuplicateKey
from services.tasks.storage import tables as t
from services.tasks.storage.driver import Driver, id_list, in_id_list
from services.tasks.storage.ids import new_id

USERS = t.User.__table__
KEYS = t.ApiKey.__table__

# Every API call checks a key: straight to the driver (driver.py).
_USER_FOR_KEY = (
    "SELECT users.id, users.name, users.created_at FROM users"
    " JOIN api_keys ON api_keys.user_id = users.id"
    " WHERE api_keys.key_hash = $1 AND api_keys.revoked_at IS NULL"
)


_EXISTING = "SELECT id FROM users WHERE "


class Users:
    """``ports.UsersTx`` on one SQLAlchemy connection inside its transaction."""

    def __init__(self, c: AsyncConnection, driver: Driver) -> None:
        self.c = c
        self._sql = driver

    async def count(self) -> int:
        return int(await self.c.scalar(select(func.count()).select_from(USERS)) or 0)

    async def insert(self, name: str, now: datetime) -> m.User:
        user = m.User(new_id(), name, now)
        try:
            await self.c.execute(insert(USERS).values(id=user.id, name=name, created_at=now))
        except IntegrityError as exc:
            raise DuplicateKey(name) from exc
        return user

    async def insert_key(self, user_id: str, key_hash: str, prefix: str, now: datetime) -> None:
        await self.c.execute(
            insert(KEYS).values(
                id=new_id(), user_id=user_id, key_hash=key_hash, prefix=prefix, created_at=now
            )
        )

    async def for_key_hash(self, key_hash: str) -> m.User | None:
        row = await self._sql.fetchone(_USER_FOR_KEY, key_hash)
        return m.User(row[0], row[1], self._sql.dt(row[2])) if row else None

    async def existing(self, user_ids: list[str]) -> set[str]:
        if not user_ids:
            return set()
        # Every CreateTasks call asks: straight to the driver, the ids as one parameter.
        rows = await self._sql.fetchall(
            _EXISTING + in_id_list(self._sql.dialect, "id"),
            id_list(self._sql, user_ids),
        )
        return {row[0] for row in rows}

    async def list_keys(self) -> list[m.UserKey]:
        rows = await self.c.execute(
            select(USERS.c.id, USERS.c.name, KEYS.c.prefix, KEYS.c.created_at, KEYS.c.revoked_at)
            .join(KEYS, KEYS.c.user_id == USERS.c.id)
            .order_by(USERS.c.name, KEYS.c.created_at)
        )
        return [m.UserKey(*row) for row in rows]

    async def live_key_ids_with_prefix(self, prefix: str) -> list[str]:
        rows = await self.c.execute(
            select(KEYS.c.id).where(
                # substr, not LIKE: LIKE ignores case on SQLite.
                func.substr(KEYS.c.prefix, 1, len(prefix)) == prefix,
                KEYS.c.revoked_at.is_(None),
            )
        )
        return [row.id for row in rows]

    async def live_key_ids_for_hash(self, key_hash: str) -> list[str]:
        rows = await self.c.execute(
            select(KEYS.c.id).where(KEYS.c.key_hash == key_hash, KEYS.c.revoked_at.is_(None))
        )
        return [row.id for row in rows]

    async def revoke_key(self, key_id: str, now: datetime) -> None:
        await self.c.execute(update(KEYS).where(KEYS.c.id == key_id).values(revoked_at=now))
