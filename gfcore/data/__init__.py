"""Datasets: the synthetic demo set and YOLO datasets on disk."""
