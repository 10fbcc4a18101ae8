"""Database writes the database may ask to run again: one retry policy for every write path.

Three attempts after the first, with exponential backoff (50 ms, 100 ms, 200 ms ... at most 1 s),
as the seeds' recovery rule asks of progress writes.
"""

from collections.abc import Callable

from django.db import OperationalError
from psycopg import errors as psycopg_errors
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

WRITE_ATTEMPTS = 4
WAIT = wait_exponential(multiplier=0.05, max=1)


def is_conflict(error: BaseException) -> bool:
    """A deadlock or a serialization failure: the transaction was rolled back and may run again."""
    return isinstance(error, OperationalError) and isinstance(
        error.__cause__, psycopg_errors.DeadlockDetected | psycopg_errors.SerializationFailure
    )


def retrying(*, retry_on: Callable[[BaseException], bool]) -> Retrying:
    """for attempt in retrying(retry_on=...): with attempt, transaction.atomic(): ..."""
    return Retrying(
        stop=stop_after_attempt(WRITE_ATTEMPTS),
        wait=WAIT,
        retry=retry_if_exception(retry_on),
        reraise=True,
    )
