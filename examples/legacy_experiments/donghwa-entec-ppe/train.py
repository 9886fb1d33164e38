"""PPE detector training (2024 version). Usage: python train.py --data data.yaml --epochs 30 --batch 16"""
import argparse
import shutil
from pathlib import Path

from ultralytics import YOLO


def train(data, epochs, batch, imgsz, model="yolov8n.yaml", project="runs", callbacks=None):
    """Train and return the Ultralytics trainer (its best checkpoint is trainer.best)."""
    yolo = YOLO(model)
    for event, fn in (callbacks or {}).items():
        yolo.add_callback(event, fn)
    yolo.train(data=data, epochs=epochs, batch=batch, imgsz=imgsz, workers=0, project=project, name="ppe",
               exist_ok=True, plots=True, verbose=False)
    return yolo.trainer


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True, help="YOLO data yaml")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--imgsz", type=int, default=160)
    parser.add_argument("--model", default="yolov8n.yaml")
    args = parser.parse_args()

    trainer = train(args.data, args.epochs, args.batch, args.imgsz, args.model)
    out = Path("weights")
    out.mkdir(exist_ok=True)
    shutil.copy(trainer.best, out / "best.pt")
    shutil.copy(Path(trainer.save_dir) / "results.csv", "results.csv")
    print("saved", out / "best.pt")


if __name__ == "__main__":
    main()
