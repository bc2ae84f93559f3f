"""Model files on disk: byte-reproducible torch files, and the settings digest a model.pt was trained with.

model.pt holds {"settings_digest": ..., "model": state_dict}: evaluation refuses a model whose digest is not
that of the settings it was given (another seed's or variant's model, or settings edited since training).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch
from torch import nn

from normstudy import atomic
from normstudy.settings import RunSettings

MODEL_KEYS = ("model", "settings_digest")


class ModelFileError(ValueError):
    """A model file that is missing, unreadable, not a normstudy model, or trained with other settings."""


def save_torch(path: Path, obj: Any) -> None:
    """torch.save, atomically and byte-reproducibly.

    Saved to a path, torch names the zip's inner folder after the (temporary) file name; saved to a buffer it is
    always "archive", so identical objects give identical files.
    """
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic.write_bytes(path, buffer.getvalue())


def save_model(path: Path, state: dict[str, torch.Tensor], settings: RunSettings) -> None:
    """Write model.pt: the weights and the digest of the settings they were trained with."""
    save_torch(path, {"model": state, "settings_digest": settings.digest()})


def read_model_file(path: Path) -> dict[str, Any]:
    """model.pt's contents ({"model": state_dict, "settings_digest": ...}), refusing a missing, truncated or foreign
    file."""
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ModelFileError(f"{path}: missing; train the run (snakemake {path})") from None
    except Exception as error:  # torch raises several types for a truncated or foreign file
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ModelFileError(f"{path}: not a model file torch can read ({first}); delete it to retrain") from None
    if not isinstance(saved, dict) or tuple(sorted(saved)) != MODEL_KEYS:
        raise ModelFileError(f"{path}: not a normstudy model.pt (no settings digest in it); delete it to retrain")
    return saved


def check_trained_with(saved: dict[str, Any], path: Path, settings: RunSettings, settings_path: Path) -> None:
    """Refuse a model file whose recorded settings digest is not that of `settings` (read from `settings_path`)."""
    if saved["settings_digest"] != settings.digest():
        raise ModelFileError(
            f"{path} was trained with other settings than {settings_path} (settings digest"
            f" {str(saved['settings_digest'])[:12]}, not {settings.digest()[:12]}): give the run's own"
            " settings.json, or retrain the run"
        )


def load_model(model: nn.Module, path: Path, settings: RunSettings, settings_path: Path) -> None:
    """Load model.pt into `model`, refusing a file trained with settings other than `settings` (read from
    `settings_path`), or one that is truncated or of another shape."""
    saved = read_model_file(path)
    check_trained_with(saved, path, settings, settings_path)
    try:
        model.load_state_dict(saved["model"])
    except RuntimeError as error:
        first = str(error).splitlines()[0]
        raise ModelFileError(f"{path}: its weights do not fit {settings.variant.name}'s network ({first})") from None
