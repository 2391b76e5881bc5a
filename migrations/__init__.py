"""Alembic environment and revisions for the driftloop store (run through `driftloop db`)."""
