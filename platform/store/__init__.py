"""The SQL store: models, engine and schema migrations."""
