"""Storage adapters: SQLAlchemy models, the engine, and the SQL update store.

Exceptions: storage lets SQLAlchemy's ``SQLAlchemyError`` propagate; callers that retry
(the group committer) catch it.
"""
