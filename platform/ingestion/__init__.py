"""The stream's way in: validate records, store them in bulk, idempotently."""
