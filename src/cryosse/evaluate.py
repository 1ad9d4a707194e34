"""Placeholder: this stage's module is being written; it adds no subcommand yet."""


def add_cli(subparsers) -> None:  # noqa: ARG001
    return None
