"""Attribution: which knobs explain a WER gap (strategies, statistics, a simulator to compare them)."""
