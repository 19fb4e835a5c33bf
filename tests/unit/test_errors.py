import pytest
from pydantic import BaseModel, ValidationError, model_validator

from schemas.errors import validation_errors, validation_summary


class Inner(BaseModel):
    n: int


class Outer(BaseModel):
    name: str
    inner: Inner
    count: int = 0

    @model_validator(mode="after")
    def _positive(self) -> "Outer":
        if self.count < 0:
            raise ValueError("count must not be negative")
        return self


def _error(data: object) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        Outer.model_validate(data)
    return info.value


def test_validation_errors_name_each_field_by_its_dotted_location() -> None:
    exc = _error({"name": 1, "inner": {"n": "x"}})
    assert [f for f, _ in validation_errors(exc)] == ["name", "inner.n"]
    assert [f for f, _ in validation_errors(exc, prefix="body.")] == ["body.name", "body.inner.n"]
    assert len(validation_errors(exc, limit=1)) == 1


def test_an_error_about_the_whole_value_is_named_by_the_prefix_or_whole() -> None:
    exc = _error({"name": "a", "inner": {"n": 1}, "count": -1})
    assert validation_errors(exc) == [("body", "Value error, count must not be negative")]
    assert validation_errors(exc, whole="report")[0][0] == "report"
    assert validation_errors(exc, prefix="fact.")[0][0] == "fact"


def test_validation_summary_is_one_line_with_or_without_the_fields() -> None:
    exc = _error({"name": 1, "inner": {"n": "x"}})
    assert validation_summary(exc) == (
        "name: Input should be a valid string; "
        "inner.n: Input should be a valid integer, unable to parse string as an integer"
    )
    assert validation_summary(exc, limit=1, fields=False) == "Input should be a valid string"
    assert validation_summary(ValueError("plain")) == "plain"
