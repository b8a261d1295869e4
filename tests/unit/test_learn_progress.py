"""The lesson page's redraw stamp and stop rule (webapp/learn/progress.py): a page whose run
jumps from its first epoch to finished in one poll still ends drawing the finished run."""

from __future__ import annotations

from types import SimpleNamespace

from netlens.webapp.learn import progress as P


def info(last_epoch, finished, run_id=7):
    return SimpleNamespace(id=run_id, last_epoch=last_epoch, is_finished=finished)


def test_the_state_tells_epoch_0_from_no_epoch_and_finished_from_running():
    states = [P.run_state([i]) for i in (info(None, False), info(0, False), info(0, True))]
    assert len({tuple(s) for s in states}) == 3
    assert P.run_state([info(3, True), info(None, False, 8)]) == [7, 3, 1, 8, -1, 0]


def test_the_stamp_changes_with_the_state_only():
    running = P.run_state([info(0, False)])
    stamp = P.next_stamp([], running, drawn=[], n=1)
    assert P.next_stamp(stamp, running, drawn=running, n=2) is stamp  # no redraw while idle
    assert P.next_stamp(stamp, running, drawn=[], n=50) is stamp  # running: no re-ask
    assert not P.may_stop(stamp, running, drawn=running)


def test_epoch_0_to_finished_in_one_poll_keeps_polling_until_the_finished_run_is_drawn():
    at_0, done = P.run_state([info(0, False)]), P.run_state([info(50, True)])
    stamp = P.next_stamp(P.next_stamp([], at_0, [], 1), done, drawn=at_0, n=2)
    assert stamp[2:] == done  # the jump itself asks for a render
    assert not P.may_stop(stamp, done, drawn=at_0)  # the epoch-0 page is still on screen
    assert P.may_stop(stamp, done, drawn=done)


def test_a_final_render_that_never_lands_is_asked_for_again_with_growing_waits():
    at_0, done = P.run_state([info(0, False)]), P.run_state([info(50, True)])
    stamp, n, asked = P.next_stamp([], done, at_0, 0), 0, []
    while not P.may_stop(stamp, done, drawn=at_0) and n < 1000:
        n += 1
        new = P.next_stamp(stamp, done, at_0, n)
        if new != stamp:
            asked.append(n)
        stamp = new
    waits = [b - a for a, b in zip([0, *asked], asked, strict=False)]
    assert len(asked) == P.MAX_ASKS  # then it gives up rather than poll forever
    assert waits == [P.ASK_AFTER << k for k in range(P.MAX_ASKS)]


def test_a_crafted_stamp_neither_fails_nor_polls_forever():
    done = P.run_state([info(50, True)])
    for asks in (-5, 10**9):
        stamp = P.next_stamp([asks, 10**12, *done], done, drawn=[], n=3)
        assert 0 <= stamp[0] <= P.MAX_ASKS and stamp[1] == 3
    assert P.may_stop([P.MAX_ASKS, 0, *done], done, drawn=[])
