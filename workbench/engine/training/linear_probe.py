"""Stage 1 of fine-tuning on a few folders: a multinomial logistic-regression head on frozen features.

The protocol of Kornblith et al. (2019) and of the peers (Create ML, Turi Create): standardize the
features, fit softmax regression with an L2 penalty by full-batch L-BFGS, choose the penalty by k-fold
cross-validation. A mirrored copy of each image (when the run uses flips) is one more training row, and
the held-out fold is judged on each image and its mirror, as the finished model will be; an image and its
mirror always fall in the same fold. The fitted weights are mapped back from standardized to raw features
so they drop into the network's own Linear head.

With more features than rows (a tapped head: 15,136 features of 360 images and mirrors), the fit runs in
the rows' span (RowSpace): an L2-penalized weight has no part outside it, so the answer is the same and
each L-BFGS step costs rows², not rows × features.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

L2_GRID = (1e-4, 1e-3, 1e-2, 1e-1)  # per-weight penalty on standardized features (mean loss + λ·|W|²)
MAX_FOLDS = 5
LBFGS_ITERATIONS = 100
SD_FLOOR = 0.3  # × the median feature's spread: see standardization
PARALLEL_FIT_ELEMENTS = 600_000  # feature-matrix size from which the fit runs on every thread


@dataclass
class ProbeFit:
    weight: torch.Tensor  # (classes, features): logits = features @ weight.T + bias
    bias: torch.Tensor
    l2: float
    folds: int  # 0 = no cross-validation was possible
    cv_accuracy: float | None = None
    cv_se: float | None = None  # standard error of cv_accuracy across folds
    train_loss: float = 0.0
    train_accuracy: float = 0.0
    notes: list[str] = field(default_factory=list)

    def logits(self, features: torch.Tensor, mirrored: torch.Tensor | None = None) -> torch.Tensor:
        out = features @ self.weight.T + self.bias
        return out if mirrored is None else (out + mirrored @ self.weight.T + self.bias) / 2


@dataclass(frozen=True)
class RowSpace:
    """The span of `z`'s rows, when `z` has more columns than rows, and coordinates in it.

    The penalized loss depends on W only through z·W and |W|²; any part of W outside the rows' span adds to
    |W|² and changes no logit, so the optimum lies inside it. With z·zᵀ = U·Λ·Uᵀ, the rows of
    basis = Λ^-½·Uᵀ·z are orthonormal and span z's rows: W = basisᵀ·B gives z·W = reduce(z)·B and
    |W|² = |B|², so fitting B on reduce(z) (rows × rank) is the same problem. The basis is never formed:
    reduce(q) = q·zᵀ·U·Λ^-½ and expand(B) = zᵀ·U·Λ^-½·B cost one product with z each.
    """

    rows: torch.Tensor | None  # z; None: z is no wider than tall, nothing to gain
    to_basis: torch.Tensor | None  # U·Λ^-½ (rows, rank)
    reduced_rows: torch.Tensor  # reduce(z) = U·Λ^½, read off the eigendecomposition (z itself when None)

    @classmethod
    def of(cls, z: torch.Tensor) -> RowSpace:
        if z.shape[1] <= z.shape[0]:
            return cls(None, None, z)
        # z·zᵀ in float64: its small eigenvalues are what tells the span's directions apart
        z64 = z.double()
        gram = z64 @ z64.T
        # On one thread: MKL's threaded eigh on a 2-core machine that is busy elsewhere took 3-14 s for
        # 576-1,000 rows, against 0.05-0.25 s on one (and 25 s against 55 s for 4,000 rows).
        with _threads(1):
            eigenvalues, vectors = torch.linalg.eigh(gram)
        keep = eigenvalues > eigenvalues.max() * 1e-10  # directions the rows barely reach are noise
        root = eigenvalues[keep].sqrt()
        return cls(z, (vectors[:, keep] / root).float(), (vectors[:, keep] * root).float())

    def reduce(self, q: torch.Tensor) -> torch.Tensor:
        """Coordinates of rows `q` (in z's feature space) in the basis; for z itself, `reduced_rows`."""
        return q if self.rows is None else (q @ self.rows.T) @ self.to_basis

    def expand(self, w: torch.Tensor) -> torch.Tensor:
        """Weights (rank, C) on reduced features as weights (D, C) on the original ones."""
        return w if self.rows is None else self.rows.T @ (self.to_basis @ w)


def _fit(
    z: torch.Tensor, y: torch.Tensor, classes: int, l2: float, init: tuple[torch.Tensor, torch.Tensor] | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax regression on standardized features `z`: (W (D, C), b (C,)). Callers pass RowSpace's
    `reduced_rows` when there are more features than rows."""
    w = (init[0].clone() if init else torch.zeros(z.shape[1], classes)).requires_grad_(True)
    b = (init[1].clone() if init else torch.zeros(classes)).requires_grad_(True)
    opt = torch.optim.LBFGS(
        [w, b], lr=1, max_iter=LBFGS_ITERATIONS, tolerance_grad=1e-6, line_search_fn="strong_wolfe"
    )

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(z @ w + b, y) + l2 * w.pow(2).sum()
        loss.backward()
        return loss

    # Small problems on one thread: hand-offs cost more than the arithmetic (40×1280 features: 3 s on two
    # threads of a busy 2-core machine, 0.05 s on one). Big ones use them all (360×2048 before RowSpace: the
    # whole cross-validated fit 4.5 s on one thread, 2.6 s on two; now such a fit is at most 360×360).
    with _threads(1 if z.numel() < PARALLEL_FIT_ELEMENTS else torch.get_num_threads()), torch.enable_grad():
        opt.step(closure)
    return w.detach(), b.detach()


@contextlib.contextmanager
def _threads(count: int) -> Iterator[None]:
    """torch's intra-op threads set to `count` inside the block, restored after it."""
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass(frozen=True)
class LinearHead:
    """Logits of raw features: features @ weight.T + bias."""

    weight: torch.Tensor  # (classes, features)
    bias: torch.Tensor

    def __call__(self, features: torch.Tensor) -> torch.Tensor:
        return features @ self.weight.T + self.bias


def standardization(x: torch.Tensor, floor: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Each feature's mean and spread over the rows of `x`, the spread floored at SD_FLOOR × the median
    feature's: a feature nearly constant over a few dozen images (a unit that gray clothes never excite)
    would otherwise get a weight of ~100 once mapped back to raw features, and fine-tuning, which moves
    it a little, then blew the logits up (K = 5: validation 90% → 10% by the third epoch)."""
    sd = x.std(0, unbiased=False)
    floor = SD_FLOOR if floor is None else floor  # read when called: tests and callers may change it
    return x.mean(0), sd.clamp_min(max(floor * sd.median().item(), 1e-6))


def fit_standardized_head(
    x: torch.Tensor, y: torch.Tensor, classes: int, l2: float, *, sd_floor: float | None = None
) -> LinearHead:
    """Softmax regression on standardized `x`, its weights mapped back so it takes raw features:
    z·w = ((x − mu)/sd)·w = x·(w/sd) − (mu/sd)·w."""
    mu, sd = standardization(x, sd_floor)
    z = (x - mu) / sd
    space = RowSpace.of(z)
    w, b = _fit(space.reduced_rows, y, classes, l2, None)
    w = space.expand(w)
    return LinearHead((w / sd[:, None]).T.contiguous(), b - (mu / sd) @ w)


def stratified_folds(labels: torch.Tensor, folds: int, seed: int) -> torch.Tensor:
    """A fold number for each image: every class spread evenly over the folds."""
    generator = torch.Generator().manual_seed(seed)
    assignment = torch.empty(len(labels), dtype=torch.long)
    offset = 0
    for c in labels.unique():
        members = (labels == c).nonzero().flatten()
        members = members[torch.randperm(len(members), generator=generator)]
        assignment[members] = (torch.arange(len(members)) + offset) % folds
        offset += len(members)  # classes start on different folds, so small ones don't all pile on fold 0
    return assignment


def fit_linear_probe(
    features: torch.Tensor,
    labels: torch.Tensor,
    classes: int,
    *,
    mirrored: torch.Tensor | None = None,
    seed: int = 0,
    l2_grid: tuple[float, ...] = L2_GRID,
) -> ProbeFit:
    """Fit the head on `features` (N, D) of the training images (and `mirrored`, their mirrors' features)."""
    features, labels = features.float(), labels.long()
    notes: list[str] = []
    counts = torch.bincount(labels, minlength=classes)
    smallest = int(counts[counts > 0].min()) if len(labels) else 0
    folds = min(MAX_FOLDS, smallest)
    if len(l2_grid) == 1:  # one penalty: nothing to choose, so no cross-validation
        folds = 0
    elif folds < 2:
        notes.append(
            "no cross-validation: a class has a single training image, so the L2 penalty is the usual "
            f"{l2_grid[len(l2_grid) // 2 - 1]:g}"
        )
        folds = 0
    elif folds < MAX_FOLDS:
        notes.append(f"{folds}-fold cross-validation (the smallest class has {smallest} training images)")

    def rows(index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = features[index] if mirrored is None else torch.cat([features[index], mirrored[index]])
        y = labels[index] if mirrored is None else labels[index].repeat(2)
        return x, y

    if folds:
        assignment = stratified_folds(labels, folds, seed)
        fold_accs = {l2: [] for l2 in l2_grid}
        fold_losses = {l2: 0.0 for l2 in l2_grid}
        for k in range(folds):
            fit_idx, held = (assignment != k).nonzero().flatten(), (assignment == k).nonzero().flatten()
            x, y = rows(fit_idx)
            mu, sd = standardization(x)
            z = (x - mu) / sd
            space = RowSpace.of(z)
            z, held_z = space.reduced_rows, space.reduce((features[held] - mu) / sd)
            held_mirrored = None if mirrored is None else space.reduce((mirrored[held] - mu) / sd)
            init = None
            for l2 in sorted(l2_grid, reverse=True):  # strongest penalty first: each warm-starts the next
                init = _fit(z, y, classes, l2, init)
                w, b = init
                logits = held_z @ w + b
                if held_mirrored is not None:
                    logits = (logits + held_mirrored @ w + b) / 2
                fold_accs[l2].append((logits.argmax(1) == labels[held]).float().mean().item())
                fold_losses[l2] += F.cross_entropy(logits, labels[held], reduction="sum").item()
        # Best mean accuracy; ties (common on tiny folds) go to the lower held-out loss.
        l2 = max(l2_grid, key=lambda v: (round(sum(fold_accs[v]) / folds, 6), -fold_losses[v]))
        accs = torch.tensor(fold_accs[l2])
        cv_accuracy = float(accs.mean())
        cv_se = float(accs.std(unbiased=True) / math.sqrt(folds)) if folds > 1 else None
    else:
        l2, cv_accuracy, cv_se = l2_grid[max(len(l2_grid) // 2 - 1, 0)], None, None

    x, y = rows(torch.arange(len(labels)))
    head = fit_standardized_head(x, y, classes, l2)
    logits = head(x)
    return ProbeFit(
        weight=head.weight,
        bias=head.bias,
        l2=l2,
        folds=folds,
        cv_accuracy=cv_accuracy,
        cv_se=cv_se,
        train_loss=F.cross_entropy(logits, y).item(),
        train_accuracy=(logits.argmax(1) == y).float().mean().item(),
        notes=notes,
    )
