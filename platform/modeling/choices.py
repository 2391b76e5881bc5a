"""The names a user picks a round's training mode and replay buffer by.

They live apart from the code that runs them so that the CLI can offer and check them (in
``driftloop train --help``) without importing torch."""

MODES = ("head", "full", "lora")
REPLAY_STRATEGIES = ("none", "reservoir", "balanced")
