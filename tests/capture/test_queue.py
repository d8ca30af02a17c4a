import random
import threading
import time

import numpy as np
import pytest

from edge_fer.capture.frame import Frame
from edge_fer.capture.queue import FrameQueue
from tests.clips import clip_frame


def make_frame(index: int) -> Frame:
    return Frame("cam0", index, time.monotonic(), time.time(), clip_frame(index, (96, 64)))


def test_drop_oldest_keeps_the_newest_frames_and_counts_the_rest():
    q = FrameQueue(2)
    evicted = [q.put_drop_oldest(make_frame(i)) for i in range(5)]
    assert [e.index if e else None for e in evicted] == [None, None, 0, 1, 2]
    assert [q.get(0).index, q.get(0).index] == [3, 4]
    assert q.get(timeout=0.01) is None
    c = q.counts()
    assert (c.captured, c.dropped, c.waiting, c.in_hand, c.processed) == (5, 3, 0, 2, 0)
    q.mark_processed(2)
    c = q.counts()
    assert c.captured == c.processed + c.skipped + c.dropped + c.queued


def test_put_wait_blocks_until_room_then_delivers_in_order():
    q, stop = FrameQueue(1), threading.Event()
    q.put_wait(make_frame(0), stop)
    done = threading.Event()

    def producer():
        q.put_wait(make_frame(1), stop)
        done.set()

    threading.Thread(target=producer).start()
    assert not done.wait(0.2)
    assert q.counts().captured == 1  # the waiting frame is not counted yet: the ledger balances
    assert q.get(1).index == 0
    assert done.wait(1)
    assert q.get(1).index == 1
    assert q.counts().dropped == 0


def test_put_wait_gives_up_promptly_when_stopped_and_counts_a_drop():
    q, stop = FrameQueue(1), threading.Event()
    q.put_drop_oldest(make_frame(0))
    threading.Timer(0.2, stop.set).start()
    t0 = time.monotonic()
    assert q.put_wait(make_frame(1), stop, poll=0.05) is False
    assert time.monotonic() - t0 < 1.0
    c = q.counts()
    assert (c.captured, c.dropped, c.waiting) == (2, 1, 1)


def test_get_returns_none_after_close_and_reports_drained():
    q = FrameQueue(3)
    q.put_drop_oldest(make_frame(0))
    q.close()
    assert not q.exhausted
    assert q.get(0.01).index == 0
    assert q.exhausted and not q.drained
    q.mark_processed()
    assert q.drained
    t0 = time.monotonic()
    assert q.get(timeout=5) is None and time.monotonic() - t0 < 0.5
    with pytest.raises(RuntimeError):
        q.put_drop_oldest(make_frame(1))


def test_a_blocked_get_wakes_on_close():
    q = FrameQueue()
    threading.Timer(0.1, q.close).start()
    t0 = time.monotonic()
    assert q.get(timeout=5) is None
    assert time.monotonic() - t0 < 1.0


def test_mark_processed_refuses_more_than_was_taken():
    q = FrameQueue()
    with pytest.raises(ValueError, match="only 0"):
        q.mark_processed()
    q.put_drop_oldest(make_frame(0))
    q.get_nowait()
    with pytest.raises(ValueError, match="only 1"):
        q.mark_processed(2)


def test_shared_wakeup_lets_one_worker_serve_several_queues():
    wakeup = threading.Event()
    queues = [FrameQueue(2, wakeup=wakeup) for _ in range(3)]
    threading.Timer(0.1, lambda: queues[2].put_drop_oldest(make_frame(7))).start()
    wakeup.clear()
    got = [f for q in queues if (f := q.get_nowait()) is not None]
    assert got == []
    assert wakeup.wait(2)
    got = [f for q in queues if (f := q.get_nowait()) is not None]
    assert [f.index for f in got] == [7]


def test_ledger_balances_at_every_moment_under_concurrency():
    q, stop = FrameQueue(2), threading.Event()
    image = np.zeros((8, 8, 3), np.uint8)
    rng = random.Random(1)
    violations = []

    def producer():
        for i in range(3000):
            f = Frame("cam0", i, 0.0, 0.0, image)
            if i % 7 == 0:
                q.count_skipped()
            elif i % 2:
                q.put_drop_oldest(f)
            else:
                q.put_wait(f, stop, poll=0.01)
        q.close()

    def consumer():
        while True:
            f = q.get(timeout=0.5)
            if f is None:
                if q.exhausted:
                    return
                continue
            if rng.random() < 0.01:
                time.sleep(0.0005)
            q.mark_processed()

    def auditor():
        while not q.drained:
            with q.lock:
                c = q.counts()
                if c.captured != c.processed + c.skipped + c.dropped + c.queued:
                    violations.append(c)

    threads = [threading.Thread(target=t) for t in (producer, consumer, auditor)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    c = q.counts()
    assert not violations
    assert c.captured == 3000 and c.skipped == 429
    assert c.processed + c.dropped == 3000 - 429 and c.queued == 0
