"""Synthetic stage results for tests that should not need a CNN."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from reportgen.discover import ImageSet, Skipped
from reportgen.extract import Embeddings

SCHEMA = Path(__file__).resolve().parent.parent / "docs" / "summary.schema.json"


def validate_summary(summary: dict) -> None:
    """Fail unless ``summary`` follows docs/summary.schema.json."""
    import json

    import jsonschema

    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.validate(summary, schema, cls=jsonschema.Draft202012Validator)


def _jpeg(i: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (16, 12), ((i * 37) % 256, (i * 91) % 256, 120)).save(buf, format="JPEG")
    return buf.getvalue()


def fake_embeddings(
    features: np.ndarray,
    labels: list[str | None],
    paths: list[str] | None = None,
    skipped: tuple[Skipped, ...] = (),
) -> Embeddings:
    n = len(features)
    paths = paths or [f"{lbl or 'img'}/{i:03d}.jpg" for i, lbl in enumerate(labels)]
    labeled = labels[0] is not None
    images = ImageSet(
        root=Path("/data/fake"),
        paths=tuple(paths),
        labels=tuple(labels),
        classes=tuple(sorted({lbl for lbl in labels if lbl is not None})),
        labeled=labeled,
        skipped=skipped,
    )
    rng = np.random.default_rng(0)
    top5 = np.stack([rng.choice(1000, 5, replace=False) for _ in range(n)]).astype(np.int32)
    probs = np.sort(rng.dirichlet(np.ones(8), n)[:, :5], axis=1)[:, ::-1].astype(np.float32)
    return Embeddings(
        images=images,
        features=np.asarray(features, dtype=np.float32),
        top5_index=top5,
        top5_prob=probs,
        thumbnails=tuple(_jpeg(i) for i in range(n)),
        categories=tuple(f"imagenet class {i}" for i in range(1000)),
        backbone="fake",
        weights="none",
        preprocessing="none",
        device="cpu",
        n_computed=n,
        n_cached=0,
    )
