"""Stage events: what a progress display is told, and the notebook display of them."""

from __future__ import annotations

import textwrap
import threading

import nbformat
import pytest
from nbclient import NotebookClient

from qmskpi import progress


def test_emit_without_listeners_does_nothing_and_a_failing_listener_stops_nothing() -> None:
    progress.emit("load", rows=3)  # nobody listens: no error, nothing kept
    seen: list[progress.Event] = []

    def broken(_event: progress.Event) -> None:
        raise RuntimeError("display gone")

    with progress.listening(broken), progress.listening(seen.append):
        progress.emit("validate", period="2026-10", scope="all")
    progress.emit("compute")  # after the block: no longer heard
    assert seen == [progress.Event("validate", period="2026-10", scope="all")]


def test_events_from_other_threads_are_heard() -> None:
    seen: list[progress.Event] = []
    with progress.listening(seen.append):
        worker = threading.Thread(target=progress.emit, args=("pdf",))
        worker.start()
        worker.join()
    assert [e.stage for e in seen] == ["pdf"]


def test_tracker_keeps_where_the_run_is_and_resets_rows_for_each_pack() -> None:
    t = progress.Tracker()
    t.update(progress.Event("pack", period="2026-09", scope="all", index=1, total=2))
    t.update(progress.Event("load", period="2026-09", scope="all", rows=0))
    t.update(progress.Event("load", detail="complaints", rows=0))
    s = t.update(progress.Event("load", detail="inspections", rows=1200))
    assert s.describe() == "2026-09 all · pack 1 of 2 · load inspections · 1,200 rows read"
    s = t.update(progress.Event("notebook"))
    assert s.describe() == "2026-09 all · pack 1 of 2 · notebook · 1,200 rows read"
    s = t.update(progress.Event("pack", period="2026-09", scope="North", index=2, total=2))
    assert s.rows is None
    assert s.describe() == "2026-09 North · pack 2 of 2 · pack"
    # a single render: no pack count
    t = progress.Tracker()
    s = t.update(progress.Event("validate", period="2026-10", scope="all"))
    assert s.describe() == "2026-10 all · validate"


def test_stages_are_listed_in_the_order_a_pack_goes_through_them() -> None:
    assert progress.STAGES[0] == "pack"
    assert progress.STAGES[-1] == "done"
    assert progress.STAGES.index("browser") < progress.STAGES.index("notebook")


NOTEBOOK_CELL = textwrap.dedent(
    """
    from qmskpi import progress
    with progress.notebook_bar():
        progress.emit("pack", period="2026-10", scope="all", index=1, total=2)
        progress.emit("load", detail="complaints", rows=1234)
        progress.emit("done", detail="published")
    """
)


@pytest.mark.notebook
def test_notebook_bar_shows_the_stage_events_in_a_real_kernel() -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(NOTEBOOK_CELL)]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    NotebookClient(nb, kernel_name="python3", timeout=120).execute()
    outputs = nb.cells[0].outputs
    assert [o.output_type for o in outputs] == ["display_data"]  # one display, updated in place
    shown = outputs[0].data["text/html"]
    assert 'class="qmskpi-progress" data-state="finished"' in shown
    assert "2026-10 all · pack 1 of 2 · done published · 1,234 rows read" in shown
    assert '<progress value="1" max="2"' in shown  # one of the two packs done


def test_notebook_bar_outside_jupyter_shows_nothing_but_still_tracks(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with progress.notebook_bar() as tracker:
        progress.emit("validate", period="2026-10", scope="all")
    assert tracker.snapshot.stage == "validate"
    assert capsys.readouterr() == ("", "")
