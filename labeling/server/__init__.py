"""The embedded Argilla server: its own virtualenv (``environment``), a search backend over Argilla's
SQL database instead of Elasticsearch (``backend/``, run inside that virtualenv), and ``up`` /
``down`` / ``status`` of its processes under ``$DRIFTLOOP_HOME/argilla`` (``embedded``).
"""
