"""Where runs and models are kept: the store and run ids (store, without MLflow), MLflow runs and metrics
(runs), the registry and its champion rules (registry), run export/import (export), the model-folder
layout (model_files) and its Keras files (model_io)."""
