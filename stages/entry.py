"""What every entry point shares: user errors end the program with one line instead of a traceback, and a Hydra
stage's --help says what the stage does."""

import functools
import sys

from emotion.errors import TrainingInterrupted, UserError

INTERRUPTED_EXIT = 130  # what shells report for Ctrl-C


def user_errors_exit(main):
    """Wrap an entry point so a UserError exits non-zero with 'error: <message>' (130 for an interruption)."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except TrainingInterrupted as err:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(INTERRUPTED_EXIT)
        except UserError as err:
            sys.exit(f"error: {err}")

    return wrapper


def stage_help(stage: str) -> None:
    """Let a Hydra stage's --help show conf/hydra/help/<stage>.yaml: what it does and its main options.

    Hydra takes its help text from the hydra/help config group, which an entry point can only pick by an override.
    """
    if {"--help", "-h"} & set(sys.argv[1:]):
        sys.argv.append(f"hydra/help={stage}")
