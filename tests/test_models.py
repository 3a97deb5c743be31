"""Parameter counts are computed from the models and match the source documents."""
import pytest
import torch

from reportgen.errors import SpecError
from reportgen.models import build_model, check_model_args, count_parameters


@pytest.mark.parametrize("arch, args, expected", [
    ("mlp", {"hidden": [512, 512]}, 669_706),                                   # tutorial MLP
    ("mlp", {"hidden": [512, 256, 128, 64], "batch_norm": True}, 576_970),      # batch-normalised MLP
    ("mlp", {"hidden": [1024, 1024]}, 1_863_690),                                # wider
    ("mlp", {"hidden": [512, 512, 512]}, 932_362),                               # deeper
    ("small_cnn", {}, 421_642),
    ("bn_cnn", {}, 858_506),
    ("lab_model_a", {"activation": "relu"}, 101_146),
    ("lab_model_b", {}, 52_138),
])
def test_parameter_counts_match_the_references(arch, args, expected):
    assert count_parameters(build_model(arch, args)) == expected


@pytest.mark.parametrize("arch, size", [("resnet18", 32), ("alexnet", 64), ("lab_model_a", 28), ("bn_cnn", 28)])
def test_models_take_one_channel_and_give_ten_logits(arch, size):
    model = build_model(arch, {}).eval()
    assert model(torch.zeros(2, 1, size, size)).shape == (2, 10)


def test_unknown_architecture_and_argument_are_spec_errors():
    with pytest.raises(SpecError, match="unknown architecture 'vgg'.*Allowed: mlp"):
        check_model_args("vgg", {}, where="models.x")
    with pytest.raises(SpecError, match=r"models.x.args.width: unknown argument; allowed: hidden, batch_norm"):
        check_model_args("mlp", {"width": 3}, where="models.x")
    with pytest.raises(SpecError, match="activation: Input should be 'relu', 'sigmoid' or 'tanh' \\(got 'gelu'\\)"):
        check_model_args("lab_model_a", {"activation": "gelu"}, where="models.x")
