import pytest

from worker.consumer import lot_budget


@pytest.mark.parametrize(
    ("batch_snippets", "attempt", "budget"),
    [
        (20, 0, 20),
        (20, 1, 10),
        (20, 2, 5),
        (20, 3, 2),
        (20, 4, 1),
        (20, 9, 1),
        (1, 0, 1),
        (5, 1, 2),
    ],
)
def test_each_delayed_retry_halves_the_lot_until_a_report_is_alone(
    batch_snippets: int, attempt: int, budget: int
) -> None:
    assert lot_budget(batch_snippets, attempt) == budget
