"""Twilio's clock as this process sees it: steady, the best of the Date headers, following jumps."""

from workers.twilio_clock import TwilioClock


def test_the_offset_keeps_the_best_of_whole_second_dates():
    clock = TwilioClock()
    clock.observe(1000.0, received_at=999.6)  # written at 1000.x, floored
    clock.observe(1000.0, received_at=1000.3)  # a lower reading of the same offset
    assert round(clock.offset, 6) == 0.4
    assert round(clock.from_host(2000.0), 6) == 2000.4


def test_jumps_are_followed_both_ways():
    clock = TwilioClock()
    clock.observe(1000.0, received_at=1000.0)
    clock.observe(8200.0, received_at=1001.0)  # the emulator's clock moved 2 h ahead
    assert clock.offset == 7199.0
    clock.observe(1002.0, received_at=1002.0)  # and was reset
    assert clock.offset == 0.0
