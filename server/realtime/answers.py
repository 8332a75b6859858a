"""What a room tells a joining client: its sync step 1, and its answers to the client's step 1.

One version of a document (until its next change) is encoded once per question: a crowd
joining at once (a fresh page each, or clients reconnecting from the same point) is
answered with one encoding and one bytes object, which every peer's transport references,
not copies (decision 146). Before the room has built its document (a room just loaded, see
``Room``), a client holding nothing is answered from the stored bytes themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pycrdt import Doc

from server.metrics import SYNC_ANSWERS
from server.realtime import protocol
from server.realtime.protocol import UpdateRejected

EMPTY_UPDATE = b"\x00\x00"
EMPTY_STATE_VECTOR = b"\x00"  # what a client that holds nothing yet sends in sync step 1
ANSWERS_KEPT = 8
ANSWER_BYTES_KEPT = 32 * 1024 * 1024  # beyond this, older answers go (the newest stays)
_FULL_ANSWERS = SYNC_ANSWERS.labels(kind="full")
_DIFF_ANSWERS = SYNC_ANSWERS.labels(kind="diff")


class SyncAnswers:
    """The sync messages of one room's current version. Event loop only."""

    def __init__(self, doc: Callable[[], Doc[Any]], full_state: bytes | None) -> None:
        self._doc = doc  # the room's document (built on first use)
        # The whole document encoded as one update, until the document changes; loaded
        # with no tail, it is the stored snapshot itself. Once a client holding nothing is
        # answered, the answer (this update in a sync step 2 message) is kept instead.
        self._full_state = full_state
        self._answers: dict[bytes, bytes] = {}  # sync step 2 messages, by state vector
        self._step1: bytes | None = None
        self.full_encodings = 0  # whole-state answers encoded (tests count them)

    def forget(self) -> None:
        """The document changed: nothing kept answers it any more."""
        self._full_state = None
        self._answers.clear()
        self._step1 = None

    def step1(self) -> bytes:
        if self._step1 is None:
            self._step1 = protocol.sync_step1(self._doc().get_state())
        return self._step1

    def full_state(self) -> bytes:
        """The whole document as one update (encoded once per version of the document)."""
        if self._full_state is not None:
            return self._full_state
        answer = self._answers.get(EMPTY_STATE_VECTOR)
        if answer is not None:  # cut from the kept answer: no second encoding
            return answer[protocol.sync_step2_header_length(answer) :]
        self._full_state = self._doc().get_update()
        return self._full_state

    def has_full_state(self) -> bool:
        """Whether the whole state is at hand without encoding the document."""
        return self._full_state is not None or EMPTY_STATE_VECTOR in self._answers

    def answer(self, state_vector: bytes) -> bytes:
        """Sync step 2 for a client holding ``state_vector``; UpdateRejected if invalid."""
        answer = self._answers.get(state_vector)
        if answer is not None:
            return answer
        if state_vector == EMPTY_STATE_VECTOR:
            answer = protocol.sync_step2(self.full_state())
            # Only the answer is kept: the state is cut from it when needed again.
            self._full_state = None
            self.full_encodings += 1
            _FULL_ANSWERS.inc()
        else:
            try:
                answer = protocol.sync_step2(self._doc().get_update(state_vector))
            except ValueError as error:
                raise UpdateRejected(f"invalid state vector: {error}") from None
            _DIFF_ANSWERS.inc()
        self._keep(state_vector, answer)
        return answer

    def _keep(self, state_vector: bytes, answer: bytes) -> None:
        answers = self._answers
        answers[state_vector] = answer
        kept = sum(map(len, answers.values()))
        while len(answers) > 1 and (len(answers) > ANSWERS_KEPT or kept > ANSWER_BYTES_KEPT):
            # The oldest goes first, the answer to fresh pages last (the commonest question).
            others = [key for key in answers if key != state_vector]
            oldest = next((key for key in others if key != EMPTY_STATE_VECTOR), others[0])
            kept -= len(answers.pop(oldest))
