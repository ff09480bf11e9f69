"""LiteRT (TensorFlow Lite's runtime, without TensorFlow): the interpreter that the face detector and the int8
classifier run on, one thread, XNNPACK's CPU kernels."""

import os
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def quiet_stderr():
    """Silence the C++ runtime's start-up line ("Created TensorFlow Lite XNNPACK delegate") on stderr."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def litert_interpreter(model: str | Path | bytes):
    """A LiteRT interpreter for a .tflite file or its bytes, one thread, tensors allocated, without the runtime's
    start-up line. Raises ValueError or RuntimeError for a file that is not a model."""
    from ai_edge_litert.interpreter import Interpreter

    source = {"model_content": model} if isinstance(model, bytes) else {"model_path": str(model)}
    with quiet_stderr():
        interpreter = Interpreter(**source, num_threads=1)
        interpreter.allocate_tensors()
    return interpreter
