"""The file MLflow runs to load the registered model ("models from code": no pickled objects); see pyfunc."""

from mlflow.models import set_model

from emotion.tracking.pyfunc import EmotionModel

set_model(EmotionModel())
