"""core/quiet.py's WholeLines: lines printed from several threads at once stay whole; the
import-warning filter leaves the filters an import installs."""

import io
import sys
import threading
import warnings

from core import quiet


class SlowStream(io.StringIO):
    """A stream that yields the GIL inside every write, as a console or pipe may: without whole
    lines, one thread's text and its newline are two writes with the other thread's between."""

    def write(self, text):
        n = super().write(text)
        threading.Event().wait(0.0005)
        return n


def _print_from_threads(stream, threads=4, lines=60):
    def talk(name):
        for i in range(lines):
            print(f"<== {name} [{i}] done", file=stream, flush=True)

    workers = [threading.Thread(target=talk, args=(f"stage{t}",)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()


def test_lines_printed_from_threads_at_once_stay_whole():
    raw = SlowStream()
    _print_from_threads(raw)
    spliced = [line for line in raw.getvalue().splitlines() if not (line.startswith("<== ") and line.endswith("done"))]
    assert spliced  # the failure this guards against happens on a plain stream

    underlying = SlowStream()
    _print_from_threads(quiet.WholeLines(underlying))
    lines = underlying.getvalue().splitlines()
    assert len(lines) == 4 * 60 and all(line.startswith("<== ") and line.endswith("done") for line in lines)


def test_text_without_a_newline_waits_for_it_or_for_a_flush():
    underlying = io.StringIO()
    stream = quiet.WholeLines(underlying)
    stream.write("epoch 1")
    assert underlying.getvalue() == ""
    stream.write(" done\nepoch 2")
    assert underlying.getvalue() == "epoch 1 done\n"
    stream.flush()
    assert underlying.getvalue() == "epoch 1 done\nepoch 2"


def test_stdout_is_put_back_after_the_block():
    saved = sys.stdout
    with quiet.whole_lines_on_stdout() as stream:
        assert sys.stdout is stream and isinstance(stream, quiet.WholeLines)
    assert sys.stdout is saved


def test_what_it_does_not_handle_is_the_wrapped_streams():
    underlying = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="replace")
    stream = quiet.WholeLines(underlying)
    assert (stream.encoding, stream.errors, stream.buffer) == ("utf-8", "replace", underlying.buffer)


class LibraryWarning(UserWarning):
    pass


def test_the_import_filter_is_taken_away_and_the_imported_modules_filters_stay():
    with warnings.catch_warnings():  # this test's own sandbox, every warning shown
        warnings.resetwarnings()
        warnings.simplefilter("default")
        before = list(warnings.filters)
        with quiet.import_warnings_ignored():
            with warnings.catch_warnings(record=True) as caught:
                warnings.warn_explicit("old Python", FutureWarning, "x.py", 1, module="google.api_core")
            assert caught == []
            warnings.simplefilter("once", LibraryWarning)  # what an imported module (Beam) installs
        assert warnings.filters[0][2] is LibraryWarning and warnings.filters[1:] == before
        with warnings.catch_warnings(record=True) as caught:  # the filters as they are now
            warnings.warn_explicit("old Python", FutureWarning, "x.py", 1, module="google.api_core")
        assert [w.category for w in caught] == [FutureWarning]
