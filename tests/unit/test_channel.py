"""OrderChannel: latest-event replay and fan-out to every watcher."""

from __future__ import annotations

import datetime as dt

from service.enrollment.channel import OrderChannel, OrderEvent, Phase
from service.enrollment.orders import OrderView

NOW = dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)


def _event(phase: Phase) -> OrderEvent:
    return OrderEvent(order=OrderView(id="o1", ca_id="ca", profile_id="ov", requested_dn="cn=o1"), phase=phase,
                      time=NOW)


async def test_ok_a_final_event_published_while_the_watcher_holds_the_replay_is_still_delivered() -> None:
    channel = OrderChannel("o1")
    channel.publish(_event(Phase.WAITING))
    stream = channel.subscribe()
    assert (await anext(stream)).phase is Phase.WAITING  # the replay; the watcher is now suspended
    channel.publish(_event(Phase.ISSUED))
    assert (await anext(stream)).phase is Phase.ISSUED


async def test_ok_every_watcher_gets_every_event_until_the_final_one() -> None:
    channel = OrderChannel("o1")
    streams = [channel.subscribe() for _ in range(3)]
    channel.publish(_event(Phase.SUBMITTED))
    firsts = [await anext(stream) for stream in streams]  # subscribes, replays SUBMITTED
    for phase in (Phase.WAITING, Phase.PENDING, Phase.ISSUED):
        channel.publish(_event(phase))
    for first, stream in zip(firsts, streams):
        assert [first.phase] + [e.phase async for e in stream] == [
            Phase.SUBMITTED, Phase.WAITING, Phase.PENDING, Phase.ISSUED]
    assert channel.watchers == 0


async def test_ok_close_ends_the_watch() -> None:
    channel = OrderChannel("o1")
    channel.publish(_event(Phase.WAITING))
    stream = channel.subscribe()
    await anext(stream)
    channel.close()
    assert [e async for e in stream] == []
    assert channel.settled.is_set() and channel.finished.is_set()
