"""Real-time collaboration: the y-websocket protocol, rooms, group commit.

Exceptions raised by this layer::

    ProtocolError            (a peer sent bytes that are not a valid message; carries the
     │                        WebSocket close code and reason for that one connection)
     └── UpdateRejected      (a well-framed update that pycrdt refuses to decode)
"""
