"""TensorFlow's start-up chatter (absl's "All log messages before absl::InitializeLog()", oneDNN and CPU-feature
notes) written by its C++ side to the process's stderr while it is imported, which TF_CPP_MIN_LOG_LEVEL no longer
stops (tensorflow/tensorflow#100442): dropped, so that every command prints only its own lines. Python errors are
untouched (they are raised, not written, during the import)."""

import contextlib
import importlib.abc
import importlib.util
import os
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def stderr_dropped() -> Iterator[None]:
    """File descriptor 2 points at the null device inside the block (C++ writes go there too)."""
    sys.stderr.flush()
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(null)
        os.close(saved)


class QuietTensorFlow(importlib.abc.MetaPathFinder):
    """Finds tensorflow as usual and runs its first import with stderr dropped; TensorFlow is imported only where a
    command needs it, so this costs nothing elsewhere."""

    def find_spec(self, name, path, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)  # once, and not for the lookup below
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            execute = spec.loader.exec_module

            def exec_module(module):
                with stderr_dropped():
                    execute(module)

            spec.loader.exec_module = exec_module
        return spec


def install() -> None:
    """Quiet the first import of TensorFlow in this process (nothing when it is imported already)."""
    if "tensorflow" not in sys.modules and not any(isinstance(f, QuietTensorFlow) for f in sys.meta_path):
        sys.meta_path.insert(0, QuietTensorFlow())
