"""The `driftloop` command: thin typer commands over the platform's services."""
