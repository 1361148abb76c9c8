import math

from workbench.engine.training.config import TrainConfig
from workbench.engine.training.lr_find import lr_find, suggest_lr


def test_suggestion_is_a_decade_below_the_minimum_not_the_noisy_start():
    lrs = [1e-6 * 10 ** (i / 10) for i in range(60)]  # 1e-6 … ~1
    losses = [2.3 + (0.05 if i % 2 else -0.05) for i in range(10)]  # noisy plateau at the start
    losses += [2.3 - 0.04 * i for i in range(40)] + [0.7 + 0.5 * i for i in range(10)]  # falls, then blows up
    suggestion = suggest_lr(lrs, losses)
    lowest = lrs[losses.index(min(losses))]
    assert math.isclose(suggestion, lowest / 10)
    assert suggestion > lrs[10]


def test_lr_find_on_real_images(fmnist_folder):
    config = TrainConfig(data=str(fmnist_folder), model="course_cnn", batch_size=32)
    result = lr_find(config, num_steps=60)
    assert 10 <= len(result.lrs) <= 60 and len(result.lrs) == len(result.losses)
    assert result.lrs == sorted(result.lrs)  # an exponential sweep upwards
    assert result.lrs[0] < result.suggestion < result.lrs[-1]
    assert all(math.isfinite(loss) for loss in result.losses)
