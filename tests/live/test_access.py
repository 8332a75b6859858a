"""Who may connect: tokens, documents and roles, checked before any document byte."""

from __future__ import annotations

import base64
import json
import zlib

import pytest
from pycrdt import Text

from server.domain.access import Role, TokenSigner
from tests.support.live import LiveServer, issue_token
from tests.support.yclient import YClient

pytestmark = pytest.mark.asyncio


def _base(server: LiveServer, document_id: str) -> str:
    return f"ws://127.0.0.1:{server.port}/ws/dpia/{document_id}"


async def _refused(url: str) -> tuple[int | None, str | None, int]:
    client = await YClient.connect(url, sync=False)
    code, reason = await client.wait_closed()
    frames = client.frames_received
    await client.close()
    return code, reason, frames


async def _seed(server: LiveServer, document_id: str, content: str) -> None:
    client = await YClient.connect(server.url(document_id, saved=True))
    client.doc.get("t", type=Text).insert(0, content)
    await client.wait_saved()
    await client.close()


async def test_connection_without_token_is_closed_4401_before_any_document_byte(
    live_server: LiveServer,
) -> None:
    await _seed(live_server, "secret-doc", "confidential")
    code, reason, frames = await _refused(_base(live_server, "secret-doc"))
    assert (code, frames) == (4401, 0)
    assert reason is not None and "token is required" in reason


async def test_forged_token_is_refused_4401(live_server: LiveServer) -> None:
    await _seed(live_server, "secret-doc", "confidential")
    forged = TokenSigner("another-key-" + "x" * 40).issue(
        principal="mallory", document_id="secret-doc", role=Role.EDITOR, ttl_seconds=60
    )
    code, reason, frames = await _refused(f"{_base(live_server, 'secret-doc')}?token={forged}")
    assert (code, frames) == (4401, 0)
    assert reason is not None and "not issued by this server" in reason


async def test_tampered_token_is_refused_4401(live_server: LiveServer) -> None:
    await _seed(live_server, "secret-doc", "confidential")
    token = issue_token(live_server.settings, "secret-doc", Role.VIEWER)
    payload, _, signature = token.rpartition(".")
    raw = base64.urlsafe_b64decode(payload.lstrip(".") + "=" * (-len(payload.lstrip(".")) % 4))
    claims = json.loads(zlib.decompress(raw) if payload.startswith(".") else raw)
    assert claims["role"] == "viewer"
    claims["role"] = "editor"
    forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=")
    tampered = forged_payload.decode() + "." + signature
    code, _, frames = await _refused(f"{_base(live_server, 'secret-doc')}?token={tampered}")
    assert (code, frames) == (4401, 0)


async def test_expired_token_is_refused_4401(live_server: LiveServer) -> None:
    await _seed(live_server, "secret-doc", "confidential")
    expired = issue_token(live_server.settings, "secret-doc", Role.EDITOR, ttl=-1)
    code, reason, frames = await _refused(f"{_base(live_server, 'secret-doc')}?token={expired}")
    assert (code, frames) == (4401, 0)
    assert reason is not None and "expired" in reason


async def test_token_for_another_document_is_refused_4403(live_server: LiveServer) -> None:
    await _seed(live_server, "secret-doc", "confidential")
    other = issue_token(live_server.settings, "my-doc", Role.EDITOR)
    code, reason, frames = await _refused(f"{_base(live_server, 'secret-doc')}?token={other}")
    assert (code, frames) == (4403, 0)
    assert reason is not None and "another document" in reason


async def test_viewer_of_unknown_document_is_refused_4404_and_nothing_is_created(
    live_server: LiveServer,
) -> None:
    code, _, frames = await _refused(live_server.url("never-made", role=Role.VIEWER))
    assert (code, frames) == (4404, 0)
    store_has = live_server.call(live_server.runtime.rooms._store.load("never-made"))
    assert store_has is None


async def test_invalid_document_id_is_refused(live_server: LiveServer) -> None:
    token = issue_token(live_server.settings, "ok-doc", Role.EDITOR)
    code, _, frames = await _refused(f"{_base(live_server, 'bad%20id!')}?token={token}")
    assert (code, frames) == (4404, 0)


async def test_viewer_reads_but_its_writes_are_dropped_and_it_is_told(
    live_server: LiveServer,
) -> None:
    await _seed(live_server, "shared", "original")
    viewer = await YClient.connect(live_server.url("shared", role=Role.VIEWER))
    editor = await YClient.connect(live_server.url("shared", saved=True))
    try:
        assert str(viewer.doc.get("t", type=Text)) == "original"
        viewer.doc.get("t", type=Text).insert(0, "vandalised ")
        await viewer.wait_until(lambda: bool(viewer.denied))
        assert "Read-only" in viewer.denied[0]
        editor.doc.get("t", type=Text).insert(len("original"), " and edited")
        await editor.wait_saved()
        await viewer.wait_until(lambda: "and edited" in str(viewer.doc.get("t", type=Text)))
        assert str(editor.doc.get("t", type=Text)) == "original and edited"
    finally:
        await viewer.close()
        await editor.close()
    fresh = await YClient.connect(live_server.url("shared"))
    try:
        assert str(fresh.doc.get("t", type=Text)) == "original and edited"
    finally:
        await fresh.close()
