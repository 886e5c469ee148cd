"""bench/serving_common.run_threads_for: the flood and soak benchmarks' run of clients beside a
sampler for a fixed time."""

import importlib.util
import os
import threading
import time

from tests.conftest import REPO

spec = importlib.util.spec_from_file_location("serving_common", os.path.join(REPO, "bench", "serving_common.py"))
serving_common = importlib.util.module_from_spec(spec)
spec.loader.exec_module(serving_common)


def test_clients_and_the_sampler_run_until_stop_and_are_joined():
    stop, seen, samples = threading.Event(), [], []

    def client(k):
        while not stop.is_set():
            time.sleep(0.01)
        seen.append(k)
    threads = [threading.Thread(target=client, args=(k,)) for k in range(3)]
    elapsed = serving_common.run_threads_for(threads, 0.3, stop, lambda: samples.append(1), every=0.05)
    assert 0.3 <= elapsed < 5 and stop.is_set()
    assert sorted(seen) == [0, 1, 2] and len(samples) >= 3
    assert not any(t.is_alive() for t in threads)
