"""The linear probe's fit in the span of its rows (RowSpace) is the same fit, only cheaper."""

import pytest
import torch
import torch.nn.functional as F

from workbench.engine.training.linear_probe import RowSpace, _fit, fit_standardized_head, standardization


def _wide_features(rows: int = 48, features: int = 600, classes: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(rows) % classes
    centres = torch.randn(classes, features, generator=generator)
    return centres[labels] * 0.5 + torch.randn(rows, features, generator=generator), labels


def test_row_space_is_orthonormal_and_spans_the_rows():
    x, _ = _wide_features()
    space = RowSpace.of(x)
    assert space.rows is not None and space.reduced_rows.shape == (48, 48)
    basis = space.to_basis.T @ x  # (rank, D), never formed by the fit itself
    assert torch.allclose(basis @ basis.T, torch.eye(48), atol=1e-4)
    assert torch.allclose(space.reduce(x), space.reduced_rows, atol=1e-2)
    # Each row is rebuilt from its coordinates in the basis: nothing of the rows lies outside it.
    assert torch.allclose(space.expand(space.reduced_rows.T).T, x, atol=1e-3)
    assert RowSpace.of(x[:, :40]).rows is None  # no wider than tall: fitted as it is


def test_the_fit_in_the_row_space_is_the_fit_on_every_feature():
    x, y = _wide_features()
    mu, sd = standardization(x)
    z = (x - mu) / sd
    w_full, b_full = _fit(z, y, 3, 1e-2, None)  # every feature at once, as before RowSpace
    head = fit_standardized_head(x, y, 3, 1e-2)  # the same problem, fitted in the rows' span
    w_reduced = (head.weight * sd).T  # back to standardized features

    def objective(logits: torch.Tensor, w: torch.Tensor) -> float:
        return (F.cross_entropy(logits, y) + 1e-2 * w.pow(2).sum()).item()

    # The same optimum (to L-BFGS's tolerance), reached from a 48-column problem instead of a 600-column one.
    assert objective(head(x), w_reduced) == pytest.approx(objective(z @ w_full + b_full, w_full), rel=1e-5)
    assert torch.allclose(head(x), z @ w_full + b_full, atol=1e-2)
    # and the same answers on images the fit never saw
    unseen, _ = _wide_features(rows=12)
    assert torch.equal(head(unseen).argmax(1), (((unseen - mu) / sd) @ w_full + b_full).argmax(1))
