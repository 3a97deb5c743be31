"""Which test compares two settings, decided here and nowhere else: paired t when seed s of both settings starts
from the same initial weights and sees the same batch order, Welch's t otherwise.

The engine seeds the weights with `torch.manual_seed(seed)` before building the model (train.new_state) and each
epoch's batch order with `epoch_seed(seed, epoch)` over the training set (lockstep.epoch_order), so two runs with
the same seed share both whenever the fields below are equal; what may differ is what the seed does not touch
(learning rate, optimizer, batch size, budget). Their per-seed differences then cancel the shared luck of the
initialisation and the data order, which Welch's test, treating the two sides as independent, throws away.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

# The request fields that, with the seed, fix the initial weights (architecture and its arguments, on one device)
# and the batch order (the data, its subsets, whether batches are shuffled).
SHARED_RANDOMNESS_FIELDS = ("arch", "model_args", "dataset", "train_subset", "test_subset", "image_size",
                            "shuffle", "device")


def same_start(request_a: Mapping[str, Any], request_b: Mapping[str, Any]) -> bool:
    """Whether two runs of the same seed start from the same weights and see the same batch order."""
    return all(request_a.get(f) == request_b.get(f) for f in SHARED_RANDOMNESS_FIELDS)


def paired(seeds_a: Iterable[tuple[Any, Mapping[str, Any]]], seeds_b: Iterable[tuple[Any, Mapping[str, Any]]]) -> bool:
    """(seed, request) of each measured seed of two settings → whether their comparison is paired:
    the same seeds on both sides (at least two), and every seed's two runs starting alike."""
    a, b = dict(seeds_a), dict(seeds_b)
    if len(a) < 2 or set(a) != set(b) or None in a:
        return False
    return all(same_start(a[s], b[s]) for s in a)
