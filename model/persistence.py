"""Save and load models in Keras' native ``.keras`` format, with safe mode on."""

from __future__ import annotations

from pathlib import Path

import keras


def save_model(model: keras.Model, path: str | Path) -> Path:
    """Save ``model`` (architecture, weights and optimizer state) to a ``.keras`` file.

    Raises:
        ValueError: If ``path`` does not end in ``.keras``.
    """
    path = Path(path)
    if path.suffix != ".keras":
        raise ValueError(f"Model path must end in '.keras', got '{path}'.")
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)
    return path


def load_model(path: str | Path) -> keras.Model:
    """Load a ``.keras`` file with Keras safe mode on.

    Safe mode refuses to deserialize Python lambdas and other arbitrary code, so a
    model file handed in by someone else cannot run code on this machine.
    """
    return keras.models.load_model(Path(path), safe_mode=True, compile=True)
