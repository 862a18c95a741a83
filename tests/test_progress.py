"""The training jobs' one-line-an-epoch console output."""

import pytest

from emergence.progress import EpochProgress, bar, duration, figure


def clock(*times):
    return iter(times).__next__


def test_bar_fills_with_the_share_done():
    assert bar(0, 4, width=8) == "[········]"
    assert bar(2, 4, width=8) == "[####····]"
    assert bar(4, 4, width=8) == "[########]"
    assert bar(9, 4, width=8) == "[########]"  # never wider than itself
    with pytest.raises(ValueError, match="total"):
        bar(1, 0)


@pytest.mark.parametrize("seconds, text", [(0, "0s"), (4.4, "4s"), (59.6, "1m00s"), (141, "2m21s"), (3900, "1h05m")])
def test_durations_are_short(seconds, text):
    assert duration(seconds) == text


def test_figures_keep_four_significant_digits():
    assert figure(0.123456) == "0.1235" and figure(1234.5) == "1234" and figure(3) == "3"
    assert figure(0.0000123) == "1.23e-05" and figure(True) == "True" and figure(float("nan")) == "nan"


def test_each_epoch_gives_one_line_with_rate_and_time_left():
    p = EpochProgress("diffusion", 10, clock=clock(100.0, 103.0, 106.0))
    first = p.line(1, {"loss": 0.5, "exact_program": 0.25})
    assert first == "diffusion  1/10 [##··············]  10%  loss 0.5  exact_program 0.25  3.0 s/epoch  eta 27s"
    assert "\n" not in first and "\r" not in first
    assert p.line(2).endswith("3.0 s/epoch  eta 24s")


def test_the_last_epoch_says_how_long_the_phase_took():
    p = EpochProgress("scorer", 2, clock=clock(0.0, 5.0))
    assert p.line(2).endswith("100%  2.5 s/epoch  took 5s")


def test_a_resumed_phase_times_only_the_epochs_this_process_ran():
    p = EpochProgress("epoch", 10, start=8, clock=clock(0.0, 4.0))
    assert p.line(9, {"loss": 1}).endswith("4.0 s/epoch  eta 4s")
    with pytest.raises(ValueError, match="total epochs"):
        EpochProgress("epoch", -1)
    EpochProgress("swa", 0)  # a phase configured away: no line, no error
