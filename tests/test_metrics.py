import numpy as np
import pandas as pd
import pytest

from riskmodel.evaluation import metrics, wave_detection

T = pd.Timestamp


def _waves():
    return pd.DataFrame(
        {
            "unit_id": ["G1", "C1", "G9"],
            "category": ["noise", "wages", "noise"],
            "start": [T("2024-03-04"), T("2024-05-06"), T("2024-01-01")],
            "end": [T("2024-03-18"), T("2024-05-13"), T("2024-01-08")],
        }
    )


def _alarms(rows):
    return pd.DataFrame(rows, columns=["unit_id", "time", "category"]).astype({"time": "datetime64[us]"})


def test_hand_computed_detection_delay_and_false_alarms():
    alarms = _alarms(
        [
            ("G1", T("2024-03-04"), "noise"),  # at the very start: sees none of the wave -> false
            ("C1", T("2024-03-10"), "noise"),  # the grid wave's community, day 6 -> detects G1's wave
            ("G1", T("2024-03-20"), "noise"),  # day 16, within end + 7 -> the wave's, not a detection
            ("G2", T("2024-05-20"), "wages"),  # grid of C1, day 14 -> detects C1's wave
            ("G2", T("2024-05-21"), "noise"),  # other category -> false, same week as the next
            ("G2", T("2024-05-22"), "noise"),
            ("G3", T("2024-05-22"), "wages"),  # not in C1 -> false
        ]
    )
    parent = {"G1": "C1", "G2": "C1", "G3": "C2", "G9": "C3"}
    got = wave_detection(alarms, _waves(), unit_weeks=500, parent=parent, watch_start="2024-02-01")
    # G9's wave started before the watch: not counted. Delays 6 and 14 days.
    # False unit-weeks: (G1, week of 03-04), (G2, week of 05-20), (G3, week of 05-20) -> 3 / 500 * 1000.
    assert got == {
        "waves_watched": 2,
        "waves_detected": 2,
        "wave_detection_rate": 1.0,
        "wave_median_delay_days": 10.0,
        "false_alarms_per_1000_unit_weeks": 6.0,
    }


def test_late_alarm_is_no_detection_and_nothing_detected_gives_nan_delay():
    alarms = _alarms([("G1", T("2024-03-19"), "noise")])  # day 15
    got = wave_detection(alarms, _waves(), unit_weeks=100, parent={"G1": "C1"})
    assert got["waves_watched"] == 3 and got["waves_detected"] == 0 and got["wave_detection_rate"] == 0.0
    assert np.isnan(got["wave_median_delay_days"]) and got["false_alarms_per_1000_unit_weeks"] == 0.0


def test_watch_end_drops_waves_whose_first_days_were_not_watched():
    got = wave_detection(_alarms([]), _waves(), unit_weeks=10, watch_end="2024-05-15")
    assert got["waves_watched"] == 2  # C1's wave starts 2024-05-06: 14 days end after 05-15


def test_unit_weeks_must_be_positive():
    with pytest.raises(ValueError, match="unit_weeks must be > 0"):
        wave_detection(_alarms([]), _waves(), unit_weeks=0)


# Ranking metrics, computed by hand: 8 units, k = 25% -> 2 units.
Y = np.array([4, 0, 2, 1, 0, 0, 3, 0])
S = np.array([0.9, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1])


def test_hit_rate_pai_pei_by_hand():
    # Top 2: units 0 and 1 -> 4 of 10 cases; best 2: units 0 and 6 -> 7.
    assert metrics.hit_rate(Y, S, k=0.25) == pytest.approx(0.4)
    assert metrics.pai(Y, S, k=0.25) == pytest.approx(0.4 / 0.25)
    assert metrics.pei_star(Y, S, k=0.25) == pytest.approx(4 / 7)


def test_ties_at_the_boundary_share_the_slots_whatever_the_row_order():
    s = np.array([0.9, 0.5, 0.5, 0.5, 0.1, 0.1, 0.1, 0.1])
    # One slot left for three tied units (0, 2, 1 cases): each counts 1/3 -> (4 + 3/3) / 10.
    assert metrics.hit_rate(Y, s, k=0.25) == pytest.approx(0.5)
    order = np.random.default_rng(0).permutation(8)
    assert metrics.hit_rate(Y[order], s[order], k=0.25) == pytest.approx(0.5)


def test_area_weighted_selection():
    area = np.array([2.0, 1, 1, 1, 1, 1, 1, 2])  # total 10, k = 20% -> 2 km2: only unit 0
    assert metrics.hit_rate(Y, S, k=0.2, area=area) == pytest.approx(0.4)
    assert metrics.pai(Y, S, k=0.2, area=area) == pytest.approx(0.4 / 0.2)
    # Best 2 km2: unit 0 alone (4) or units 2 and 6 (5) -> the ranking by cases picks unit 0 first: 4.
    assert metrics.pei_star(Y, S, k=0.2, area=area) == pytest.approx(1.0)


def test_rri_and_precision_at_capacity_by_hand():
    e = np.array([2.0, 2.0, 1, 1, 1, 1, 1, 1])  # total 10, like the cases
    # Top 2 by e: units 0 and 1: 4 cases for 4 expected, overall 10 for 10 -> 1.
    assert metrics.rri(Y, e, k=0.25) == pytest.approx(1.0)
    # e = [2, 1, 1, 1, .5, .5, 1, .5] (7.5): unit 0, then four tied at 1 share one slot (1/4 each):
    # caught 4 + (0 + 2 + 1 + 3) / 4 = 5.5 cases for 2 + 1 = 3 expected.
    assert metrics.rri(Y, e * np.where(Y > 0, 1, 0.5), k=0.25) == pytest.approx((5.5 / 3) / (10 / 7.5))
    assert metrics.precision_at_capacity(Y, S, capacity=4) == pytest.approx(3 / 4)
    with pytest.raises(ValueError, match="capacity must be between 1 and the 8 units"):
        metrics.precision_at_capacity(Y, S, capacity=0)


def test_no_case_gives_nan_and_bad_k_is_refused():
    assert np.isnan(metrics.hit_rate(np.zeros(8), S))
    assert np.isnan(metrics.roc_auc(np.zeros(8), S))
    with pytest.raises(ValueError, match=r"k must be a share in \(0, 1\]"):
        metrics.hit_rate(Y, S, k=5)


def test_probability_metrics_by_hand():
    y, p = np.array([1, 0, 1, 0]), np.array([0.8, 0.4, 0.4, 0.2])
    # Pairs (pos, neg): (0.8, 0.4) 1, (0.8, 0.2) 1, (0.4, 0.4) 1/2, (0.4, 0.2) 1 -> 3.5 / 4.
    assert metrics.roc_auc(y, p) == pytest.approx(0.875)
    assert metrics.brier(y, p) == pytest.approx((0.04 + 0.16 + 0.36 + 0.04) / 4)
    assert metrics.log_loss(y, p) == pytest.approx(-(np.log(0.8) + np.log(0.6) + np.log(0.4) + np.log(0.8)) / 4)
    # Ranking 0.8 (+), then 0.4 tie (+, -), then 0.2 (-): precision 1 at recall 1/2, 2/3 at recall 1.
    assert metrics.average_precision(y, p) == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)


def test_expected_calibration_error_by_hand():
    y = np.array([0, 0, 0, 1, 0, 1])
    p = np.array([0.1, 0.1, 0.2, 0.5, 0.5, 0.9])
    # Two bins of three rows: {0.1, 0.1, 0.2} with no case, {0.5, 0.5, 0.9} with two.
    gap = 3 / 6 * abs(0 - 0.4 / 3) + 3 / 6 * abs(2 / 3 - 1.9 / 3)
    assert metrics.expected_calibration_error(y, p, bins=2) == pytest.approx(gap)


def test_poisson_deviance_and_psi_by_hand():
    assert metrics.poisson_deviance([0, 2], [1.0, 1.0]) == pytest.approx((2 + 2 * (2 * np.log(2) - 1)) / 2)
    assert metrics.poisson_deviance([1, 3], [1.0, 3.0]) == pytest.approx(0.0)
    assert metrics.population_stability_index(np.arange(100), np.arange(100)) == pytest.approx(0.0)
    # Halves: 0.5 / 0.5 against 0.25 / 0.75.
    got = metrics.population_stability_index([1, 2, 3, 4], [1, 3, 4, 4], bins=2)
    assert got == pytest.approx(-0.25 * np.log(0.5) + 0.25 * np.log(1.5))


def test_lead_time_by_hand():
    flags = pd.Series(
        pd.to_datetime(["2024-01-01", "2024-01-08", "2024-02-01", "2024-03-01"]), index=["G1", "G1", "G1", "G2"]
    )
    cases = pd.Series(
        pd.to_datetime(["2024-01-11", "2024-02-05", "2024-01-20", "2024-02-20"]), index=["G1", "G1", "G2", "G3"]
    )
    # G1's first case: flagged from 01-01 -> 10 days; its second: flagged 02-01 (after the first case) -> 4;
    # G2's case came before its flag and G3 was never flagged: left out. Median of 10 and 4.
    assert metrics.lead_time(flags, cases) == pytest.approx(7.0)
