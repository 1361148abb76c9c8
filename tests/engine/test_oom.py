"""Out-of-memory back-off: simulated CUDA OOM errors halve the micro-batch down to a floor, training goes on
with the same result, and the user is told."""

from __future__ import annotations

import gc
import weakref

import pytest
import torch
import torch.nn.functional as F

from workbench.engine.errors import WorkbenchError
from workbench.engine.training.oom import OomBackoff, OutOfMemory, is_out_of_memory, micro_batches


def cuda_oom() -> torch.OutOfMemoryError:
    return torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 8 GiB total)")


def fits_up_to(limit: int, calls: list[int]):
    def step(micro: int) -> str:
        calls.append(micro)
        if micro > limit:
            raise cuda_oom()
        return f"ran with {micro}"

    return step


def test_oom_halves_until_it_fits_then_sticks_and_reports_once():
    backoff = OomBackoff(64, floor=4, release=lambda: None)
    calls: list[int] = []

    assert backoff.run(fits_up_to(20, calls)) == "ran with 16"
    assert calls == [64, 32, 16]
    assert backoff.reductions == [(64, 32), (32, 16)] and backoff.micro_batch == 16
    messages = backoff.pop_messages()
    assert len(messages) == 2 and "with 32 images at a time: now 16 at a time" in messages[1]
    assert "batch of 64" in messages[1]

    calls.clear()
    assert backoff.run(fits_up_to(20, calls)) == "ran with 16"
    assert calls == [16]  # the size found is kept: no second search
    assert backoff.pop_messages() == []


def test_at_the_floor_the_error_is_clear_and_names_the_way_out():
    backoff = OomBackoff(32, floor=8, release=lambda: None)
    calls: list[int] = []
    with pytest.raises(OutOfMemory) as caught:
        backoff.run(fits_up_to(0, calls))
    assert calls == [32, 16, 8]
    assert isinstance(caught.value, WorkbenchError)
    message = str(caught.value)
    assert "even with 8 image(s) at a time" in message and "Tried to allocate 2.00 GiB" in message
    assert "--device cpu" in message and "--img-size" in message


def test_floor_never_exceeds_the_batch_and_odd_sizes_halve_down():
    backoff = OomBackoff(5, floor=16, release=lambda: None)
    assert backoff.floor == 5
    with pytest.raises(OutOfMemory, match="even with 5 image"):
        backoff.run(fits_up_to(0, []))
    odd = OomBackoff(45, floor=1, release=lambda: None)
    odd.run(fits_up_to(12, calls := []))
    assert calls == [45, 22, 11]


def test_other_errors_pass_through_untouched():
    backoff = OomBackoff(16, release=lambda: pytest.fail("released memory for an error that is no OOM"))

    def broken(micro: int):
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied (4x3 and 5x2)")

    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
        backoff.run(broken)
    assert backoff.micro_batch == 16 and backoff.reductions == []


@pytest.mark.parametrize(
    "error, expected",
    [
        (cuda_oom(), True),
        (RuntimeError("CUDA out of memory. Tried to allocate 20.00 MiB"), True),  # torch before 1.13
        (RuntimeError("MPS backend out of memory (MPS allocated: 1.2 GB)"), True),
        (RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 99 bytes"), True),
        (RuntimeError("cuDNN error: CUDNN_STATUS_ALLOC_FAILED"), True),
        (RuntimeError("Expected all tensors to be on the same device"), False),
        (ValueError("out of memory"), False),  # only the allocators' RuntimeErrors count
    ],
)
def test_out_of_memory_is_recognised_in_every_wording(error, expected):
    assert is_out_of_memory(error) is expected


def test_memory_of_the_failed_attempt_is_free_before_the_retry():
    """The traceback holds the failed step's tensors; the release must come after it is dropped."""
    refs: list[weakref.ref] = []
    freed_at_release: list[bool] = []

    def step(micro: int) -> int:
        activations = torch.ones(micro, 1000)  # stands for the memory the OOM'ing step had taken
        refs.append(weakref.ref(activations))
        if micro > 10:
            raise cuda_oom()
        return micro

    def release() -> None:
        gc.collect()
        freed_at_release.append(refs[-1]() is None)

    assert OomBackoff(40, release=release).run(step) == 10
    assert freed_at_release == [True, True]


def test_a_real_model_trains_identically_after_simulated_oom():
    """The recommended wiring, end to end on the CPU: an OOM raised inside the forward pass for more than 8
    images shrinks the micro-batch, and the accumulated step moves the weights exactly like one full step."""
    torch.manual_seed(0)
    x, y = torch.randn(32, 3, 8, 8), torch.randint(0, 4, (32,))

    def make_model() -> torch.nn.Module:
        torch.manual_seed(1)
        return torch.nn.Sequential(
            torch.nn.Conv2d(3, 6, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(6 * 6 * 6, 4)
        )

    def step(model, optimizer, micro: int) -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)  # first, so a failed attempt leaves nothing behind
        total = torch.zeros(())
        for xs, ys, weight in micro_batches(x, y, micro):
            loss = F.cross_entropy(model(xs), ys)
            (loss * weight).backward()
            total += loss.detach() * weight
        optimizer.step()
        return total

    reference = make_model()
    ref_opt = torch.optim.SGD(reference.parameters(), lr=0.1, momentum=0.9)
    ref_losses = [step(reference, ref_opt, 32) for _ in range(3)]

    model = make_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)

    def small_gpu(module, inputs):
        if len(inputs[0]) > 8:
            raise cuda_oom()

    model.register_forward_pre_hook(small_gpu)
    backoff = OomBackoff(32, floor=2)
    losses = [backoff.run(lambda micro: step(model, optimizer, micro)) for _ in range(3)]

    assert backoff.reductions == [(32, 16), (16, 8)]
    assert len(backoff.pop_messages()) == 2
    for got, want in zip(losses, ref_losses, strict=True):
        assert got.item() == pytest.approx(want.item(), rel=1e-5)
    for p, q in zip(model.parameters(), reference.parameters(), strict=True):
        assert torch.allclose(p, q, atol=1e-6)
