"""The Model Registry: one registered model, its aliases candidate and champion, and the rule that moves the
champion (only on the same test images, only for a better score); registry URIs to run ids."""

import logging

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from emotion.errors import ModelNotFound
from emotion.tracking.runs import CONNECTION_ERRORS, MODEL_ARTIFACTS, TEST_SPLIT_TAG, logged_model_id, unreachable
from emotion.tracking.store import check_run_id

log = logging.getLogger(__name__)

CANDIDATE, CHAMPION = "candidate", "champion"
ACCURACY_METRIC = "test_accuracy"
DECISION_TAG = "champion_decision"  # why register made the run the champion, or did not

def run_card(run_id: str, name: str) -> dict:
    """What the registry says of a run: {name, version (its newest under `name`), test_accuracy}, None where unknown."""
    client = MlflowClient()
    try:
        accuracy = client.get_run(check_run_id(run_id)).data.metrics.get(ACCURACY_METRIC)
        versions = [int(v.version) for v in client.search_model_versions(f"name='{name}' and run_id='{run_id}'")]
    except CONNECTION_ERRORS as err:
        raise unreachable(err, f"reading run {run_id}") from err
    return {"name": name if versions else None, "version": max(versions, default=None), "test_accuracy": accuracy}


def register(run_id: str, name: str, accuracy: float) -> dict[str, int]:
    """Register the run's model (once per run), alias it 'candidate', and 'champion' if it beats the champion.

    Scores compare only on the same test images: a run becomes the champion when it has a recorded test split
    (TEST_SPLIT_TAG) and the registry has no champion yet, or the champion's split is the same and its accuracy
    lower. Why it did or did not is logged and tagged on the run (DECISION_TAG). Returns {alias: version} for the
    aliases that now point at this run's version.
    """
    client = MlflowClient()
    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(name, description="FER2013 emotion classifiers: MLflow Models (pyfunc) holding model.json + weights and their ONNX files")
    existing = client.search_model_versions(f"name='{name}' and run_id='{run_id}'")
    version = existing[0] if existing else _new_version(client, name, run_id)
    client.set_registered_model_alias(name, CANDIDATE, version.version)
    aliases = {CANDIDATE: int(version.version)}
    promote, reason = _champion_decision(client, name, run_id, accuracy)
    if promote:
        client.set_registered_model_alias(name, CHAMPION, version.version)
        aliases[CHAMPION] = int(version.version)
    client.set_tag(run_id, DECISION_TAG, reason)
    log.info("%s version %s: %s", name, version.version, reason)
    return aliases


def _new_version(client: MlflowClient, name: str, run_id: str):
    """A new version of the registered model for the run's MLflow Model (models:/<model id>), or for its loose
    model files (runs:/<run id>/model) when it was logged before its model was an MLflow Model."""
    model_id = logged_model_id(run_id)
    source = f"models:/{model_id}" if model_id else f"runs:/{run_id}/{MODEL_ARTIFACTS}"
    return client.create_model_version(name, source=source, run_id=run_id, model_id=model_id)


def _champion_decision(client: MlflowClient, name: str, run_id: str, accuracy: float) -> tuple[bool, str]:
    """Whether the run becomes the champion, and the reason in one sentence."""
    test_split = client.get_run(run_id).data.tags.get(TEST_SPLIT_TAG)
    if test_split is None:
        return False, (f"not promoted to {CHAMPION}: the run has no {TEST_SPLIT_TAG} tag, so which test images it "
                       "was scored on is unknown; score it with the evaluate stage")
    try:
        champion = client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return True, f"{CHAMPION}: the first model scored on a recorded test split"
    if champion.run_id == run_id:
        return True, f"{CHAMPION} already"
    champion_run = client.get_run(champion.run_id)
    champion_split = champion_run.data.tags.get(TEST_SPLIT_TAG)
    if champion_split != test_split:
        why = ("has no recorded test split (import or evaluate it again to record one)" if champion_split is None
               else "was scored on other test images (another data.source)")
        return False, (f"not promoted to {CHAMPION}: {CHAMPION} version {champion.version} (run {champion.run_id}) "
                       f"{why}, so the accuracies do not compare")
    best = champion_run.data.metrics.get(ACCURACY_METRIC, float("-inf"))
    if accuracy <= best:
        return False, (f"not promoted to {CHAMPION}: test accuracy {accuracy:.4f} does not beat {CHAMPION} version "
                       f"{champion.version}'s {best:.4f}")
    return True, f"{CHAMPION}: test accuracy {accuracy:.4f} beats version {champion.version}'s {best:.4f}"


def resolve_run_id(model_uri: str) -> str:
    """The run id behind models:/<name>@<alias>, models:/<name>/<version> or runs:/<run id>/..."""
    if model_uri.startswith("runs:/"):
        return check_run_id(model_uri.removeprefix("runs:/").split("/")[0])
    if not model_uri.startswith("models:/"):
        raise ModelNotFound(f"{model_uri}: not a models:/ or runs:/ URI; use models:/<name>@champion or --run-id")
    name, _, ref = model_uri.removeprefix("models:/").partition("@")
    client = MlflowClient()
    try:
        if ref:
            run_id = client.get_model_version_by_alias(name, ref).run_id
        else:
            name, _, version = name.rpartition("/")
            run_id = client.get_model_version(name, version).run_id
    except MlflowException as err:
        raise ModelNotFound(
            f"{model_uri} not found in the registry at {mlflow.get_tracking_uri()}: run the pipeline (dvc repro) to "
            "register a model, or pass --run-id"
        ) from err
    return check_run_id(run_id)  # the registry's answer becomes a cache path: never trust its form
