"""The Ultralytics integration: offline setup, model building, training and its metric callbacks."""
