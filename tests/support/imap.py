"""A real IMAP server for tests: Debian's Dovecot, on loopback, in a temporary directory."""

from __future__ import annotations

import contextlib
import imaplib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.live import WAIT_SECONDS, reserved_port

DOVECOT = os.environ.get("OPENDPIA_TEST_DOVECOT", "/usr/sbin/dovecot")
PASSWORD = "imap-test-password"
CONFIG = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
mail_location = maildir:~/Maildir
first_valid_uid = 1
passdb {{
  driver = static
  args = password={password}
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={root}/home/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
"""


@dataclass(frozen=True)
class Mailbox:
    port: int
    user: str = "bridge"

    @property
    def url(self) -> str:
        return f"imap://{self.user}:{PASSWORD}@127.0.0.1:{self.port}/INBOX"

    def client(self) -> imaplib.IMAP4:
        client = imaplib.IMAP4("127.0.0.1", self.port, timeout=WAIT_SECONDS)
        client.login(self.user, PASSWORD)
        client.select("INBOX")
        return client

    def append(self, raw: bytes) -> None:
        client = self.client()
        try:
            status, answer = client.append("INBOX", None, None, raw)
            assert status == "OK", answer
        finally:
            client.logout()

    def count(self, criteria: str = "UNDELETED") -> int:
        client = self.client()
        try:
            status, found = client.uid("SEARCH", criteria)
            assert status == "OK"
            return len(found[0].split()) if found[0] else 0
        finally:
            client.logout()


@contextlib.contextmanager
def dovecot() -> Iterator[Mailbox]:
    """Dovecot delivers as ``nobody``: its directory must be reachable by that user, which
    pytest's private temporary directories are not."""
    if not Path(DOVECOT).is_file():
        if os.environ.get("CI") == "true":
            pytest.fail(f"no Dovecot at {DOVECOT} (required in CI): run `make test`")
        pytest.skip(f"no Dovecot at {DOVECOT}: `apt-get install dovecot-imapd` (make test does)")
    port = reserved_port()
    root = Path(tempfile.mkdtemp(prefix="opendpia-dovecot-"))
    root.chmod(0o755)
    (root / "home").mkdir()
    shutil.chown(root / "home", "nobody", "nogroup")
    config = root / "dovecot.conf"
    config.write_text(CONFIG.format(root=root, port=port, password=PASSWORD))
    process = subprocess.Popen(
        [DOVECOT, "-F", "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
    )
    try:
        mailbox = Mailbox(port)
        deadline = time.monotonic() + 2 * WAIT_SECONDS
        while True:
            try:
                mailbox.client().logout()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    log = (
                        (root / "dovecot.log").read_text()
                        if (root / "dovecot.log").exists()
                        else ""
                    )
                    raise RuntimeError(f"Dovecot did not start: {log[-2000:]}") from None
                time.sleep(0.05)
        yield mailbox
    finally:
        process.terminate()
        process.wait(10)
        shutil.rmtree(root, ignore_errors=True)
