"""Is this process ready to serve: can it reach its database and its bus?"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.domain.bus import Bus
from server.storage.models import OutboxMessage

CHECK_SECONDS = 2.0


class Health:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], bus: Bus) -> None:
        self._sessions = sessions
        self._bus = bus

    async def readiness(self) -> dict[str, str]:
        """Each dependency's state: "ok", or what went wrong."""
        return {
            "database": await self._check(self._database()),
            "bus": await self._check(self._bus.ping()),
        }

    async def _database(self) -> None:
        async with self._sessions() as session:
            await session.execute(text("SELECT 1"))

    async def _check(self, probe: Awaitable[None]) -> str:
        try:
            async with asyncio.timeout(CHECK_SECONDS):
                await probe
        except TimeoutError:
            return f"no answer within {CHECK_SECONDS:.0f} s"
        except Exception as error:
            return f"unreachable: {type(error).__name__}: {str(error)[:200]}"
        return "ok"

    async def outbox_depth(self) -> int:
        """Mail messages not yet sent (pending or being sent)."""
        async with self._sessions() as session:
            count = await session.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.status.in_(("pending", "sending")))
            )
        return count or 0
