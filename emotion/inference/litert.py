"""LiteRT (TensorFlow Lite's runtime, without TensorFlow): the interpreter that the face detector and the int8
classifier run on, one thread, XNNPACK's CPU kernels."""

import os
from contextlib import contextmanager
from pathlib import Path

from emotion.errors import ModelInvalid, first_line


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


def litert_interpreter(model: str | Path | bytes, advice: str):
    """A LiteRT interpreter for a .tflite file or its bytes, one thread, tensors allocated, without the runtime's
    start-up line; for a file that is not a model, ModelInvalid in one line that ends with advice (what to do)."""
    from ai_edge_litert.interpreter import Interpreter

    source = {"model_content": model} if isinstance(model, bytes) else {"model_path": str(model)}
    try:
        with quiet_stderr():
            interpreter = Interpreter(**source, num_threads=1)
            interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as err:
        name = "the TFLite model" if isinstance(model, bytes) else model
        raise ModelInvalid(f"{name}: LiteRT cannot load it ({first_line(err)}); {advice}") from err
    return interpreter
