"""bench/webcam_steadiness.py's metrics on hand-made label sequences, and its smoothing rules."""

import importlib.util
import os

import numpy as np

from tests.conftest import REPO

spec = importlib.util.spec_from_file_location("webcam_steadiness", os.path.join(REPO, "bench", "webcam_steadiness.py"))
steadiness = importlib.util.module_from_spec(spec)
spec.loader.exec_module(steadiness)

FPS = 10.0  # 3 frames of SETTLE_S=0.3 s


def test_segments_are_runs_of_one_id_and_absence_is_none():
    assert steadiness.segments([-1, 0, 0, 1, 1, 1, -1, 2]) == [(0, 1, 3), (1, 3, 6), (2, 7, 8)]
    assert steadiness.segments([]) == []


def test_accuracy_counts_frames_where_the_face_is_present_and_shown():
    assert steadiness.accuracy([3, 3, -1, 4, 5], [3, 4, 4, 4, -1]) == (2, 3)


def test_flicker_counts_changes_inside_a_segment_after_it_settles():
    seg = [0] * 10 + [1] * 10
    start = {0: 0, 1: 10}
    # a change 1 frame into each segment (not counted), then 2 changes in segment 0 after it settles
    shown = [5, 3, 3, 3, 3, 4, 3, 3, 3, 3] + [3, 6, 6, 6, 6, 6, 6, 6, 6, 6]
    changes, seconds = steadiness.flicker(shown, seg, start, FPS)
    assert changes == 2
    # pairs (f-1, f) with f-1 at least 3 frames into its segment: f = 4..9 and 14..19
    assert abs(seconds - 12 / FPS) < 1e-9


def test_flicker_skips_pairs_across_a_frame_where_the_face_is_not_shown():
    seg, start = [0] * 8, {0: 0}
    shown = [1, 1, 1, 1, 2, -1, 1, 1]
    changes, seconds = steadiness.flicker(shown, seg, start, FPS)
    assert changes == 1 and abs(seconds - 2 / FPS) < 1e-9  # pairs (3,4) and (6,7); (4,5), (5,6) skipped


def test_reaction_is_time_until_the_shown_label_reaches_the_models_label_on_the_new_segment():
    seg = [0] * 5 + [1] * 5
    raw = [2] * 5 + [4, 4, 6, 4, 4]  # the model says 4 on the new face, mostly
    shown = [2] * 5 + [2, 2, 2, 4, 4]  # the shown label follows 3 frames late
    r = steadiness.reactions(shown, raw, seg, FPS)
    assert r["seconds"] == [0.3] and r["never"] == 0 and r["no_change"] == 0


def test_reaction_never_no_change_and_not_shown_are_told_apart():
    seg = [0] * 4 + [1] * 4 + [2] * 4
    raw = [2] * 4 + [2] * 4 + [5] * 4  # no change seen by the model at frame 4; a change at 8
    shown = [2] * 4 + [2] * 4 + [-1, 2, 2, 2]  # never follows, and not shown at the change
    r = steadiness.reactions(shown, raw, seg, FPS)
    assert r == {"seconds": [], "never": 1, "no_change": 1, "not_shown": 1}


def test_a_face_that_comes_back_is_not_a_change():
    seg = [0] * 3 + [-1] * 3 + [1] * 3
    r = steadiness.reactions([1] * 9, [1] * 3 + [-1] * 3 + [2] * 3, seg, FPS)
    assert r == {"seconds": [], "never": 0, "no_change": 0, "not_shown": 0}


def test_match_pairs_best_overlaps_first_once_each():
    truth = [(0, 0, 10, 10), (100, 100, 10, 10)]
    shown = [(101, 101, 10, 10), (1, 0, 10, 10), (300, 300, 5, 5)]
    assert steadiness.match(truth, shown) == {0: 1, 1: 0}
    assert steadiness.match(truth, [(8, 8, 10, 10)]) == {}  # IoU 0.02


def test_the_ema_rule_is_the_clients_smoothing():
    rule = steadiness.Ema(0.5)
    a, b = np.array([1.0, 0, 0]), np.array([0, 1.0, 0])
    assert rule.step(7, a)[1] == 0
    q, label = rule.step(7, b)
    assert np.allclose(q, [0.5, 0.5, 0]) and label == 0  # a tie: argmax keeps the first
    q, label = rule.step(7, b)
    assert np.allclose(q, [0.25, 0.75, 0]) and label == 1
    assert rule.step(8, a)[1] == 0  # another face starts its own


def test_hysteresis_holds_the_label_until_another_leads_by_the_margin():
    rule = steadiness.Hysteresis(1.0, 0.2)
    assert rule.step(0, np.array([0.6, 0.4, 0]))[1] == 0
    assert rule.step(0, np.array([0.45, 0.55, 0]))[1] == 0  # leads by 0.1: held
    assert rule.step(0, np.array([0.35, 0.65, 0]))[1] == 1  # leads by 0.3: follows
    assert rule.step(0, np.array([0.45, 0.55, 0]))[1] == 1


def test_dwell_changes_the_label_after_k_frames_of_another_top_class():
    rule = steadiness.Dwell(1.0, 3)
    a, b = np.array([0.9, 0.1, 0]), np.array([0.1, 0.9, 0])
    assert [rule.step(0, x)[1] for x in (a, b, b, a, b, b, b, b)] == [0, 0, 0, 0, 0, 0, 1, 1]


def test_summarise_adds_the_tallies_of_runs():
    one = {"correct": 3, "counted": 4, "steady_correct": 2, "steady_counted": 2, "changes": 1, "seconds": 2.0,
           "reactions": [0.1, 0.3], "never": 1, "no_change": 0, "not_shown": 0}
    two = dict(one, correct=1, reactions=[0.2])
    m = steadiness.summarise([one, two], True)
    assert m["accuracy"] == 0.5 and m["flicker_per_s"] == 0.5 and m["reaction_median_s"] == 0.2
    assert m["never"] == 2 and m["changes_followed"] == 3


def test_faces_come_from_the_valid_carve_to_select_and_publictest_to_report(demo_csv):
    from tools import evaluate

    for faces in steadiness.FACES:
        images, labels = steadiness.load_faces(demo_csv, faces)
        expected_labels, expected_images, _ = evaluate.read_usage(demo_csv, faces)
        assert images.shape == (len(expected_labels), 48, 48) and images.dtype == np.uint8
        np.testing.assert_array_equal(labels, expected_labels)
        np.testing.assert_array_equal(images, expected_images[..., 0])
    carve, public = (steadiness.load_faces(demo_csv, faces)[1] for faces in ("valid", "PublicTest"))
    assert len(public) == 30 and 0 < len(carve) < 240  # a carve of the 240 Training rows, not PublicTest


def test_goals_are_judged_against_the_raw_output_of_the_same_run():
    raw = {"accuracy": 0.62, "flicker_per_s": 1.0, "reaction_p90_s": 0.033}
    assert steadiness.goals_met({"accuracy": 0.611, "flicker_per_s": 0.2, "reaction_p90_s": 0.3}, raw) == "FRA"
    assert steadiness.goals_met({"accuracy": 0.609, "flicker_per_s": 0.21, "reaction_p90_s": 0.301}, raw) == "---"
    assert steadiness.goals_met({"accuracy": 0.62, "flicker_per_s": 0.1, "reaction_p90_s": None}, raw) == "F-A"


def test_the_table_pools_each_rule_and_counts_the_videos_that_meet_all_three_goals():
    columns = ["accuracy", "accuracy_steady", "flicker_per_s", "reaction_median_s", "reaction_p90_s", "never"]
    raw, calm = [0.62, 0.62, 1.0, 0.0, 0.03, 0], [0.615, 0.62, 0.15, 0.03, 0.1, 0]
    jumpy = [0.615, 0.62, 0.5, 0.03, 0.1, 0]  # a video where the rule misses the flicker goal
    pooled = {"ema a=1": dict(zip(columns, raw)), "hyst a=0.5 m=0.05": dict(zip(columns, calm))}
    result = {"pooled": {"detect_every=4": pooled}, "run_columns": columns,
              "runs": [{"detect_every": 4, "rules": {"ema a=1": raw, "hyst a=0.5 m=0.05": calm}},
                       {"detect_every": 4, "rules": {"ema a=1": raw, "hyst a=0.5 m=0.05": jumpy}}]}
    lines = steadiness.table(result, 4).splitlines()
    assert lines[2] == "| ema a=1 | 62.00 (+0.00) | 62.00 | 1.000 (1.00) | 0.000 / 0.030 | 0 | -RA | 0 of 2 |"
    assert lines[3] == "| hyst a=0.5 m=0.05 | 61.50 (-0.50) | 62.00 | 0.150 (0.15) | 0.030 / 0.100 | 0 | FRA | 1 of 2 |"


def test_the_table_prints_a_dash_where_no_change_was_followed_or_raw_never_flickered():
    columns = ["accuracy", "accuracy_steady", "flicker_per_s", "reaction_median_s", "reaction_p90_s", "never"]
    raw, frozen = [0.62, 0.62, 0.0, None, None, 3], [0.6, 0.6, 0.0, None, None, 3]
    result = {"pooled": {"detect_every=1": {"ema a=1": dict(zip(columns, raw)),
                                            "dwell a=1 k=8": dict(zip(columns, frozen))}},
              "run_columns": columns, "runs": [{"detect_every": 1, "rules": {"ema a=1": raw, "dwell a=1 k=8": frozen}}]}
    lines = steadiness.table(result, 1).splitlines()
    assert lines[3] == "| dwell a=1 k=8 | 60.00 (-2.00) | 60.00 | 0.000 (—) | — / — | 3 | F-- | 0 of 1 |"
