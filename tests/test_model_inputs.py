"""Bad inputs to FPT give a clear error or are handled: other float dtypes are cast, token ids
outside the vocabulary, an empty batch and a left-padded mask are refused with a message."""
import pytest
import torch

from fpt_testing import tiny_backbone
from fptlib.model import FPT


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
def test_other_float_dtypes_are_cast_to_the_models(dtype):
    model = FPT(tiny_backbone("gpt2"), token_dim=2, output_dim=3).eval()
    x = torch.randn(2, 8).to(dtype)
    with torch.no_grad():
        assert torch.allclose(model(x), model(x.float()), atol=1e-6)


@pytest.mark.parametrize("bad", [12, 40, -1])
def test_token_ids_outside_the_vocabulary_name_the_range(bad):
    model = FPT(tiny_backbone("gpt2"), vocab_size=12, output_dim=2)
    x = torch.randint(0, 12, (2, 5))
    x[1, 3] = bad
    with pytest.raises(ValueError) as err:
        model(x)
    assert "vocabulary of 12" in str(err.value) and str(bad) in str(err.value)


@pytest.mark.parametrize("kind", ["continuous", "discrete"])
def test_an_empty_batch_is_a_clear_error(kind):
    if kind == "continuous":
        model, x = FPT(tiny_backbone("gpt2"), token_dim=2, output_dim=2), torch.randn(0, 8)
    else:
        model, x = FPT(tiny_backbone("gpt2"), vocab_size=12, output_dim=2), torch.ones(0, 5, dtype=torch.long)
    with pytest.raises(ValueError, match="empty batch"):
        model(x)


def test_a_left_padded_mask_is_refused():
    model = FPT(tiny_backbone("gpt2"), vocab_size=12, output_dim=2, pad_id=0)
    x = torch.tensor([[0, 0, 3, 4, 5], [1, 2, 3, 4, 5]])
    with pytest.raises(ValueError, match="right padding"):
        model(x, attention_mask=torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]]))
    model(x.flip(1), attention_mask=torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]))   # right padding is fine
    with pytest.raises(ValueError, match="fewer than 1 real tokens"):
        model(x, attention_mask=torch.tensor([[0, 0, 0, 0, 0], [1, 1, 1, 1, 1]]))


@pytest.mark.parametrize("value", [2, 0.5, -1])
def test_a_mask_that_is_not_zeros_and_ones_is_refused(value):
    """A mask of 2s used to read as real tokens and 0.5 / -1 gave raw index errors (issue #26 item 8)."""
    model = FPT(tiny_backbone("gpt2"), vocab_size=12, output_dim=2, pad_id=0)
    x = torch.tensor([[1, 2, 3, 4, 5], [1, 2, 3, 4, 5]])
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], dtype=torch.float)
    model(x, attention_mask=mask)                                 # 0/1 floats are fine
    mask[0, 2] = value
    with pytest.raises(ValueError, match="other than 0 and 1"):
        model(x, attention_mask=mask)
    model(x, attention_mask=mask != 0)                          # a bool mask is fine
