"""Dropping memory-mapped weights' pages from resident memory: the bytes stay, written pages stay."""

from __future__ import annotations

import mmap
import sys

import pytest

torch = pytest.importorskip("torch")
safetensors_torch = pytest.importorskip("safetensors.torch")

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/self/pagemap is Linux's")

from finetunekit.backends.local.file_pages import drop_file_pages
from local_fixtures import resident_pages

PAGE = mmap.PAGESIZE


@pytest.fixture
def mapped(tmp_path):
    """Tensors memory-mapped from a safetensors file (as a model's weights are), and their values."""
    torch.manual_seed(0)
    values = {"a": torch.randn(256, 512), "b": torch.randn(128, 512).to(torch.bfloat16)}
    path = tmp_path / "weights.safetensors"
    safetensors_torch.save_file(values, path)
    return safetensors_torch.load_file(path), values


def test_the_pages_of_mapped_weights_go_and_their_values_stay(mapped):
    tensors, values = mapped
    for name, tensor in tensors.items():
        assert torch.equal(tensor, values[name])  # read: every page resident
        assert resident_pages(tensor) > 0
    resident = sum(resident_pages(t) for t in tensors.values())
    assert drop_file_pages(tensors.values()) == resident * PAGE  # the bytes that were resident
    assert [resident_pages(t) for t in tensors.values()] == [0, 0]
    assert drop_file_pages(tensors.values()) == 0  # nothing left to drop
    for name, tensor in tensors.items():
        assert torch.equal(tensor, values[name])  # mapped back from the file, the same bytes


def test_a_tensor_written_to_is_left_resident_with_its_new_values(mapped):
    tensors, values = mapped
    tensors["a"][100, 7] = 42.0  # a private copy of that page now
    assert drop_file_pages([tensors["a"]]) == 0
    assert tensors["a"][100, 7] == 42.0
    assert torch.equal(tensors["a"][101:], values["a"][101:])


def test_tensors_computed_in_memory_are_never_dropped():
    tensor = torch.randn(512, 512)
    copy = tensor.clone()
    assert drop_file_pages([tensor]) == 0
    assert torch.equal(tensor, copy)
