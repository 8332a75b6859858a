"""Use-cases: who may do what, in which transaction. Raise ``server.domain.errors``."""
