"""CatBoost models as bytes (a ``.cbm`` file's content): how the record and a saved policy keep
them, the same bytes for the same inputs and seed."""

from __future__ import annotations

import os
import tempfile
from typing import Any


def to_bytes(model: Any) -> bytes:
    """``model`` in CatBoost's binary format. CatBoost stamps every model with a random guid
    and its finish time; both are blanked so that the same inputs and seed store the same
    bytes. Not yet for a model with a text feature (the real-data studies): CatBoost names its
    text processing with random 16-byte ids inside the model, so two fits of the same data
    and seed differ in those ids (384 bytes of a 228 KB game24_gpt4 classifier) though they
    predict the same."""
    metadata = model.get_metadata()
    metadata["model_guid"] = ""
    metadata["train_finish_time"] = ""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.cbm")
        model.save_model(path, format="cbm")
        with open(path, "rb") as handle:
            return handle.read()


def from_bytes(cls: type, data: bytes) -> Any:
    """A ``cls`` (CatBoostClassifier or CatBoostRegressor) from ``to_bytes``'s bytes, through
    a file: ``load_model(blob=...)`` crashed the process (a segmentation fault inside CatBoost
    1.2.10's deserialisation, loading a saved policy in tests/test_deploy.py)."""
    model = cls()
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.cbm")
        with open(path, "wb") as handle:
            handle.write(data)
        model.load_model(path, format="cbm")
    return model
