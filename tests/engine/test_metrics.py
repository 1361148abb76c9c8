import torch

from workbench.engine.evaluation.metrics import classification_report, confusion_matrix, topk_accuracy


def test_confusion_matrix_counts_each_pair():
    targets = torch.tensor([0, 0, 1, 1, 1, 2])
    predicted = torch.tensor([0, 1, 1, 1, 2, 0])
    cm = confusion_matrix(targets, predicted, 3)
    assert cm.tolist() == [[1, 1, 0], [0, 2, 1], [1, 0, 0]]


def test_report_agrees_with_independent_computation():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(200, 4, generator=generator)
    targets = torch.randint(0, 4, (200,), generator=generator)
    logits[torch.arange(120), targets[:120]] += 3  # make it better than chance
    report = classification_report(logits, targets, ["a", "b", "c", "d"])
    predicted = logits.argmax(1)
    assert sum(map(sum, report.confusion)) == 200
    assert abs(report.accuracy - (predicted == targets).sum().item() / 200) < 1e-9
    for k, m in enumerate(report.per_class):
        tp = ((predicted == k) & (targets == k)).sum().item()
        fp = ((predicted == k) & (targets != k)).sum().item()
        fn = ((predicted != k) & (targets == k)).sum().item()
        assert m.support == tp + fn
        assert abs(m.precision - tp / (tp + fp)) < 1e-9
        assert abs(m.recall - tp / (tp + fn)) < 1e-9
        assert abs(m.f1 - 2 * tp / (2 * tp + fp + fn)) < 1e-9
    assert report.top5 is None  # fewer than 5 classes: no top-5
    true, pred, count = report.most_confused(1)[0]
    assert count == max(report.confusion[i][j] for i in range(4) for j in range(4) if i != j)


def test_topk_accuracy():
    logits = torch.tensor([[0.1, 0.5, 0.4], [0.8, 0.15, 0.05]])
    targets = torch.tensor([2, 2])
    assert topk_accuracy(logits, targets, 1) == 0.0
    assert topk_accuracy(logits, targets, 2) == 0.5
    assert topk_accuracy(logits, targets, 3) == 1.0


def test_class_never_predicted_has_zero_precision_not_nan():
    logits = torch.tensor([[5.0, 0.0], [5.0, 0.0]])
    report = classification_report(logits, torch.tensor([0, 1]), ["x", "y"])
    assert report.per_class[1].precision == 0.0 and report.per_class[1].f1 == 0.0
    assert report.per_class[0].precision == 0.5
