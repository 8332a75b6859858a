"""The inbound email bridge: partners without an account reply to notifications by email.

    listener   SMTP/LMTP front door: refuse unknown addresses at RCPT, store, then 250
    processor  from the store: classify, route, authenticate, authorise, extract, merge
    message    parsing with caps; text from plain or sanitised HTML; attachments
    classify   loops, bounces, lists, automatic replies; trusted DMARC results
    extract    the new words of a reply, its signature set aside
    answers    the one short answer a refused person gets
    service    listeners and processor run together (in ``serve`` or ``opendpia bridge``)

Errors: the bridge raises nothing at its callers. Bad mail becomes a recorded outcome with a
reason (``server.services.inbound``); an unexpected failure leaves the message pending for a
retry and, after several, records it as failed. Nothing accepted is dropped unrecorded.
"""
