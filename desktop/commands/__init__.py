"""Sub-commands of ``pathshare``; each module exposes ``register(subparsers)``."""
