"""Mail adapters: composing messages, sending them over SMTP, the development sink.

Exceptions: ``DeliveryError`` (a message was not accepted: carries the SMTP code when there
is one; the outbox retries it).
"""
