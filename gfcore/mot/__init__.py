"""Multi-object tracking in MOTChallenge layout: reading and checking the files, TrackEval scoring."""

# The `mot.*` metric names (DESIGN.md section 3), in the order tables show them.
METRICS = ("hota", "deta", "assa", "loca", "mota", "motp", "idf1", "idp", "idr", "id_switches", "frag", "mt", "pt",
           "ml", "fp", "fn", "gt_tracks", "pred_tracks")
COUNTS = frozenset({"id_switches", "frag", "mt", "pt", "ml", "fp", "fn", "gt_tracks", "pred_tracks"})
COMBINED = "COMBINED"
