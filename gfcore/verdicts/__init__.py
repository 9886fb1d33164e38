"""How sure a decision is: per-image detection results, the paired bootstrap over images (and over timed calls
for latency), operating-point counts, and the verdict a challenge reaches from the intervals.

Pure numpy on results the evaluation already produced (gfcore.yolo.validation keeps them per image): nothing here
runs a model, so a verdict can be recomputed, and tested, from recorded numbers.
"""
