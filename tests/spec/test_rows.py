"""The result row schema: one field list in CSV order, checked names, int nodes, one truthy rule."""

import csv
import math
from dataclasses import fields

import pytest

from advmilp.spec.rows import (COLUMNS, ERROR, FOUND, KEY_COLUMNS, NOT_FOUND, OPTIMAL, TIME_LIMIT, ResultRow,
                               as_bool, is_solved, make_row)


def test_columns_are_the_dataclass_fields_in_order():
    assert COLUMNS == tuple(f.name for f in fields(ResultRow))
    assert COLUMNS[:6] == KEY_COLUMNS == ("network", "network_hash", "method", "bounds", "problem", "image_index")
    assert len(set(COLUMNS)) == len(COLUMNS)


def test_the_csv_header_is_the_field_order(tmp_path):
    from advmilp.experiments.runner import append_row

    path = tmp_path / "instances.csv"
    append_row(path, make_row(network="n", status=OPTIMAL, verified=True))
    with open(path, newline="") as fh:
        header = next(csv.reader(fh))
    assert header == [f.name for f in fields(ResultRow)]


def test_make_row_fills_defaults_and_refuses_unknown_columns():
    row = make_row(network="n", status=ERROR)
    assert list(row) == list(COLUMNS)
    assert row["verified"] is False and row["objective"] is None and row["message"] is None
    with pytest.raises(TypeError):
        make_row(netwrok="n")


@pytest.mark.parametrize("nodes, expected", [(17.0, 17), (3, 3), (math.nan, None), (None, None), (0.0, 0)])
def test_nodes_is_an_int(nodes, expected):
    row = make_row(nodes=nodes)
    assert row["nodes"] == expected and (expected is None or type(row["nodes"]) is int)


@pytest.mark.parametrize("value, expected", [
    ("True", True), ("true", True), (" t ", True), ("1", True), ("1.0", True), ("yes", True), ("y", True),
    ("False", False), ("false", False), ("0", False), ("", False), ("nan", False), (None, False),
    (math.nan, False), (True, True), (False, False), (1, True), (0, False)])
def test_as_bool(value, expected):
    assert as_bool(value) is expected


@pytest.mark.parametrize("status, verified, solved", [
    (OPTIMAL, True, True), (OPTIMAL, False, False), (FOUND, "True", True), (FOUND, "False", False),
    (TIME_LIMIT, True, False), (NOT_FOUND, False, False), (ERROR, False, False), (" Optimal ", "1", True)])
def test_is_solved_by_hand(status, verified, solved):
    assert is_solved({"status": status, "verified": verified}) is solved
    assert is_solved({"status": status}) is False        # no verification, never solved
