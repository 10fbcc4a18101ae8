"""After-commit work sent once per transaction, however many rows the transaction touched.

`on_commit_batched(name, flush, item)` adds `item` to this transaction's batch called `name`;
after the commit `flush(items)` runs once with all of them. An ingestion batch of 100 events
then makes one websocket push round and one job, not 100.

The batch lives on the connection next to its on_commit callback, one per savepoint nest. A
rollback (of the transaction or of the savepoint that registered it) discards the callback and the
batch with it: the next call, not finding the callback among the connection's pending ones,
starts a new batch. Outside a transaction, `flush([item])` runs at once.
"""

from collections.abc import Callable
from typing import Any

from django.db import transaction


def on_commit_batched(name: str, flush: Callable[[list], Any], item: Any) -> None:
    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        flush([item])
        return
    batches = connection.__dict__.setdefault("_on_commit_batches", {})
    # Per savepoint nest too: work done in different (nested or sibling) savepoints gets batches of
    # its own, each flushed at the commit, so a batch never outlives the block that made it.
    name = (name, tuple(connection.savepoint_ids))
    batch = batches.get(name)
    if batch is None or not any(entry[1] is batch[1] for entry in connection.run_on_commit):
        items: list = []

        def run(items=items) -> None:
            if batches.get(name, (None,))[0] is items:
                del batches[name]
            flush(items)

        batch = batches[name] = (items, run)
        transaction.on_commit(run)
    batch[0].append(item)
