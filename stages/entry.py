"""What every Hydra stage shares: its --help says what the stage does (how it ends on an error:
emotion.errors.user_errors_exit)."""

import sys


def stage_help(stage: str) -> None:
    """Let a Hydra stage's --help show conf/hydra/help/<stage>.yaml: what it does and its main options.

    Hydra takes its help text from the hydra/help config group, which an entry point can only pick by an override.
    """
    if {"--help", "-h"} & set(sys.argv[1:]):
        sys.argv.append(f"hydra/help={stage}")
