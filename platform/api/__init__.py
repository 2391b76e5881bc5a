"""The HTTP API: thin routes over the platform's services."""
