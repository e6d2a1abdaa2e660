"""One ``KEY=VALUE`` parser for ``train --set``, ``repro --set`` and ``results --filter``."""
import argparse

import pytest

from xbarsim.experiments.cli.assignments import assignment_type, parse_assignment, parse_value
from xbarsim.experiments.cli.main import build_parser


@pytest.mark.parametrize("text, value", [
    ("true", True), ("True", True), ("FALSE", False), ("false", False),
    ("3", 3), ("-2", -2), ("0.01", 0.01), ("1e-3", 1e-3), ("null", None),
    ("[300, 100]", [300, 100]), ('["vgg", "mlp"]', ["vgg", "mlp"]), ('{"dw_min": 0.002}', {"dw_min": 0.002}),
    ("SoftBounds", "SoftBounds"), ("fashion-mnist", "fashion-mnist"), ('"3"', "3"), ('""', ""),
])
def test_a_value_is_json_then_a_bool_in_any_case_then_the_string(text, value):
    got = parse_value(text)
    assert got == value and type(got) is type(value)


def test_an_assignment_splits_at_the_first_equals_and_strips_blanks():
    assert parse_assignment(" lr = 0.5 ") == ("lr", 0.5)
    assert parse_assignment("device=a=b") == ("device", "a=b")


@pytest.mark.parametrize("text, words", [
    ("epochs", ["--set", "FIELD=VALUE", "'epochs'"]),
    ("=3", ["--set", "FIELD=VALUE"]),
    ("epochs=", ["--set epochs", "empty"]),
])
def test_a_malformed_assignment_raises_naming_the_flag_and_the_key(text, words):
    with pytest.raises(ValueError) as err:
        parse_assignment(text)
    assert all(w in str(err.value) for w in words)


def test_the_argparse_type_turns_the_error_into_a_usage_error_with_its_message():
    with pytest.raises(argparse.ArgumentTypeError, match="--set epochs: the value is empty"):
        assignment_type("--set")("epochs=")


def test_train_and_repro_give_true_the_same_type():
    from xbarsim.experiments.cli.train import apply_set_overrides
    train = apply_set_overrides({}, ["update.update_bl_management=True", "epochs=2"])
    repro = dict(build_parser().parse_args(["repro", "basisn", "--set", "quick=True", "--set", "epochs=2"]).options)
    assert train["update_params"]["update_bl_management"] is True and repro["quick"] is True
    assert train["epochs"] == repro["epochs"] == 2


def test_results_filter_reads_its_value_with_the_same_parser():
    from xbarsim.experiments.cli.sweep import apply_filters

    class Record:
        def __init__(self, **values):
            self.values = values

        def value(self, key):
            return self.values.get(key)

    records = [Record(zero_shift=True, up_down=0.3), Record(zero_shift=False, up_down=0.6)]
    assert [r.values["up_down"] for r in apply_filters(records, ["zero_shift=true"])] == [0.3]
    assert [r.values["up_down"] for r in apply_filters(records, ["zero_shift=False", "up_down=0.6"])] == [0.6]
    with pytest.raises(ValueError, match="--filter"):
        apply_filters(records, ["zero_shift"])
