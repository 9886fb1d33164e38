"""Export the trained detector for the edge box. Usage: python export_onnx.py --weights weights/best.pt --imgsz 160"""
import argparse
import shutil

from ultralytics import YOLO


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--weights", default="weights/best.pt")
    parser.add_argument("--imgsz", type=int, default=160)
    args = parser.parse_args()
    path = YOLO(args.weights).export(format="onnx", imgsz=args.imgsz, verbose=False)
    shutil.move(path, "ppe_detector.onnx")
    print("exported ppe_detector.onnx")


if __name__ == "__main__":
    main()
