"""The pyfunc model definition MLflow loads ("models from code"); see gfcore.registry.pyfunc."""

from mlflow.models import set_model

from gfcore.registry.pyfunc import YoloDetector

set_model(YoloDetector())
