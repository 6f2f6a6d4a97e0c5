"""Models: registry, offline-first weights, inference and training engine, model cards.

Typical use::

    from lungai.models import get_model, run_inference
    entry = get_model("lungs-unet")
    result = run_inference(image, entry, device="cpu", progress=progress)
    result.labels, result.provenance

Weights are never downloaded unless asked (``download_weights`` / ``lungai models download``); offline sites
import them with ``import_weights`` / ``lungai models import``. See ``docs/models.md``.
"""

from lungai.models.registry import (ModelEntry, UnknownModel, cache_dir, get_model, load_registry,
                                    user_registry_path, validate_registry)
from lungai.models.weights import (WeightsError, download_weights, import_weights, remove_weights, sha256_of,
                                   verify_weights, weights_path)
from lungai.models.inference import InferenceResult, build_network, load_network, run_inference

__all__ = ["ModelEntry", "UnknownModel", "cache_dir", "get_model", "load_registry", "user_registry_path",
           "validate_registry", "WeightsError", "download_weights", "import_weights", "remove_weights",
           "sha256_of", "verify_weights", "weights_path", "InferenceResult", "build_network", "load_network",
           "run_inference"]
