"""PPE detector training (2024 version). Usage: python train.py --data data.yaml --epochs 30 --batch 16"""
import argparse
import shutil
from pathlib import Path

from ultralytics import YOLO


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True, help="YOLO data yaml")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--imgsz", type=int, default=160)
    parser.add_argument("--model", default="yolov8n.yaml")
    args = parser.parse_args()

    model = YOLO(args.model)
    model.train(data=args.data, epochs=args.epochs, batch=args.batch, imgsz=args.imgsz, workers=0,
                project="runs", name="ppe", exist_ok=True, plots=True, verbose=False)
    out = Path("weights")
    out.mkdir(exist_ok=True)
    shutil.copy("runs/ppe/weights/best.pt", out / "best.pt")
    shutil.copy("runs/ppe/results.csv", "results.csv")
    print("saved", out / "best.pt")


if __name__ == "__main__":
    main()
