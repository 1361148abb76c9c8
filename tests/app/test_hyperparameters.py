"""The hyperparameter form is generated from the engine's option declarations: same defaults, same ranges,
same help, and it never restores a value the engine would refuse."""

from __future__ import annotations

import dataclasses

from workbench.app.training.hyperparameters import GROUPS, HyperparameterForm
from workbench.engine.training.config import IMG_SIZE_RANGE, TrainConfig, options


def test_the_form_starts_at_the_engines_defaults(qtbot):
    form = HyperparameterForm()
    qtbot.addWidget(form)
    engine = TrainConfig()
    values = form.values()
    shown = [name for rows in GROUPS.values() for name, _ in rows]
    assert {name: values[name] for name in shown} == {name: getattr(engine, name) for name in shown}
    assert values["augment"] is engine.augment
    # what the form hands over is a valid config as it stands
    TrainConfig(**values).validate()


def test_ranges_choices_and_tooltips_come_from_the_declarations(qtbot):
    form = HyperparameterForm()
    qtbot.addWidget(form)
    declared = options()
    assert form.img_size.maximum() == IMG_SIZE_RANGE[1]
    assert form.img_size.minimum() == IMG_SIZE_RANGE[0] - 1  # one below the range stands for 'auto'
    assert form.img_size.specialValueText() == "auto"
    assert form.val_split.maximum() < 1
    # an option the engine may choose offers 'auto' first, and 'auto' hands over None
    assert [form.optimizer.itemText(i) for i in range(form.optimizer.count())] == ["auto", *declared["optimizer"].rule.choices]
    assert form.values()["optimizer"] is None
    form.set_values({"optimizer": "sgd"})
    assert form.values()["optimizer"] == "sgd"
    form.set_values({"optimizer": None})
    assert form.values()["optimizer"] is None and form.optimizer.currentText() == "auto"
    assert [form.device.itemText(i) for i in range(form.device.count())] == list(declared["device"].rule.choices)
    assert declared["weight_decay"].help.lower()[:20] in form.weight_decay.toolTip().lower()


def test_values_the_engine_refuses_are_not_restored(qtbot):
    form = HyperparameterForm()
    qtbot.addWidget(form)
    before = form.values()
    form.set_values({"epochs": -3, "optimizer": "rmsprop", "lr": 1e300, "val_split": 1.5, "amp": "yes",
                     "batch_size": 2.5, "seed": True})
    assert form.values() == before
    form.set_values({"epochs": 7, "optimizer": "adamw", "lr": 0.002, "val_split": 0.2, "amp": False})
    after = form.values()
    assert (after["epochs"], after["optimizer"], after["lr"], after["val_split"], after["amp"]) == (
        7, "adamw", 0.002, 0.2, False)


def test_every_form_field_is_a_declared_option():
    declared = options()
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    for rows in GROUPS.values():
        for name, _ in rows:
            assert name in declared and name in fields
