"""A one-line progress display on stderr for long commands: "exported 1,200/5,000 (24%)"."""

from collections.abc import Callable

from django.core.management.base import OutputWrapper


def progress_line(stream: OutputWrapper, label: str) -> Callable[[int, int], None]:
    """A callback for services' `on_progress(done, total)`; it rewrites one line in place."""

    def show(done: int, total: int) -> None:
        percent = 100 * done // total if total else 100
        stream.write(f"\r{label} {done:,}/{total:,} ({percent}%)", ending="\n" if done >= total else "")
        stream.flush()

    return show
