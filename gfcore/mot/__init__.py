"""Multi-object tracking in MOTChallenge layout: reading and checking the files, TrackEval scoring."""

# The `mot.*` metric names (DESIGN.md section 3), in the order tables show them.
METRICS = ("hota", "deta", "assa", "loca", "mota", "motp", "idf1", "idp", "idr", "id_switches", "frag", "mt", "pt",
           "ml", "fp", "fn", "gt_tracks", "pred_tracks")
COUNTS = frozenset({"id_switches", "frag", "mt", "pt", "ml", "fp", "fn", "gt_tracks", "pred_tracks"})
COMBINED = "COMBINED"
# Not TrackEval's: its false positives per 1,000 frames (gfcore.jobs.infer.track_and_score adds it).
FALSE_ALARMS_PER_1K_FRAMES = "false_alarms_per_1k_frames"
