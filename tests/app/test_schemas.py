from __future__ import annotations

import numpy as np
import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError

from app.schemas import HeadMaps, Matrix


class Held(BaseModel):
    matrix: Matrix
    maps: HeadMaps | None = None


def test_a_float_array_reads_nested_lists_as_a_float64_array_and_writes_them_back():
    held = Held.model_validate_json('{"matrix": [[0.25, 1], [0.5, 0.0001]]}')
    assert isinstance(held.matrix, np.ndarray) and held.matrix.dtype == np.float64 and held.matrix.shape == (2, 2)
    assert held.model_dump_json() == '{"matrix":[[0.25,1.0],[0.5,0.0001]],"maps":null}'


def test_a_float_array_of_the_wrong_depth_is_refused_but_an_empty_one_may_be_shallower():
    with pytest.raises(ValidationError, match="nested 2 lists deep, got 1"):
        Held(matrix=[0.5, 0.5])
    with pytest.raises(ValidationError):
        Held(matrix=[[0.5], [0.5, 0.5]])  # ragged
    assert Held(matrix=[[0.5]], maps=[[], []]).maps.shape == (2, 0)  # alti: one empty list a layer


def test_a_float_array_is_held_c_ordered_for_orjson():
    assert Held(matrix=np.arange(6.0).reshape(2, 3).T).matrix.flags.c_contiguous


def test_a_float_arrays_json_schema_is_that_of_nested_lists_of_numbers():
    assert TypeAdapter(Matrix).json_schema() == TypeAdapter(list[list[float]]).json_schema()
    assert TypeAdapter(HeadMaps).json_schema() == TypeAdapter(list[list[list[list[float]]]]).json_schema()
