"""Catch a wrong code key before it does harm.

A new secret configured under an existing key id would silently turn every printed code
into "unknown / not issued by this brand" and change every exported PIN. The database keeps
a one-way fingerprint of each key id's secret from its first use; a hub (or CLI command)
whose configured key does not match refuses to start.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.errors import HubConfigError
from hub.models import CodeKeyFingerprint
from hub.sql import insert_ignore
from hub.timeutil import utcnow
from protocols.codes import Keyring


async def check_keys(session: AsyncSession, keyring: Keyring) -> None:
    """Record the fingerprint of keys seen for the first time; refuse a changed key."""
    await insert_ignore(
        session,
        CodeKeyFingerprint,
        [
            {"key_id": key.key_id, "fingerprint": key.fingerprint, "first_used_at": utcnow()}
            for key in keyring.keys
        ],
    )
    rows = await session.execute(select(CodeKeyFingerprint.key_id, CodeKeyFingerprint.fingerprint))
    known = {row.key_id: row.fingerprint for row in rows}
    for key in keyring.keys:
        if known.get(key.key_id) != key.fingerprint:
            raise HubConfigError(
                f"Code key {key.key_id} is not the key this database was used with (fingerprint "
                f"{key.fingerprint[:8]}, expected {known[key.key_id][:8]}): every printed code "
                f"of key {key.key_id} would read as forged. Configure the original secret for "
                f"key id {key.key_id}; a new secret needs a new key id (code_keys, active_key_id)."
            )
