"""Evaluate a checkpoint and keep the numbers in our own MLflow run (added by a team member in 2025)."""
import argparse
import json

import mlflow
from ultralytics import YOLO


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--weights", default="weights/best.pt")
    parser.add_argument("--data", required=True)
    parser.add_argument("--imgsz", type=int, default=160)
    args = parser.parse_args()

    metrics = YOLO(args.weights).val(data=args.data, imgsz=args.imgsz, batch=1, plots=False, verbose=False)
    result = {"map50": float(metrics.box.map50), "map50_95": float(metrics.box.map)}
    with open("eval.json", "w") as fh:
        json.dump(result, fh, indent=2)
    with mlflow.start_run(run_name="ppe-eval-by-hand"):  # the script's own run, as it always did
        mlflow.log_metrics(result)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
