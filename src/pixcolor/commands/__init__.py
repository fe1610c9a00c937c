"""One module per ``pixcolor`` subcommand; each exposes ``register(subparsers)``."""
