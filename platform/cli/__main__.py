"""``python -m driftloop.platform.cli``: the CLI without its console script (how a detached job
process is started, whatever the PATH)."""

from driftloop.platform.cli.app import main

main()
