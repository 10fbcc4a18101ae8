"""One LightGBM fit on a time split: the same encoder as serving (ml/features/schema.encode), the
categorical columns the schema declares, vocabularies from the training rows only (a value first
seen in the validation window is unknown to the model, as it would be when served), early
stopping on the validation rows, a fixed seed and deterministic mode, so the same data give the
same booster.
"""

from dataclasses import dataclass

import lightgbm
import numpy as np

from ml.features import schema
from ml.training import evaluation
from ml.training.datasets import Split

DEFAULT_NUM_THREADS = 2
SEED = 16
MAX_ROUNDS = 400
EARLY_STOPPING_ROUNDS = 30

BASE_PARAMS = {
    "objective": "binary",
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_data_in_leaf": 20,
    "min_sum_hessian_in_leaf": 1e-3,
    "feature_fraction": 0.9,
    "lambda_l2": 1.0,
    "cat_smooth": 10,
    "max_cat_to_onehot": 8,
    "deterministic": True,
    "force_row_wise": True,
    "verbose": -1,
}


@dataclass
class Trained:
    model_name: str
    booster: lightgbm.Booster
    vocabulary: dict
    params: dict
    metrics: dict

    def predict(self, rows: list[dict]) -> np.ndarray:
        """Probabilities for raw feature rows, encoded as serving encodes them."""
        return self.booster.predict(schema.encode(self.model_name, rows, self.vocabulary), num_threads=1)


def fit(split: Split, *, num_threads: int = DEFAULT_NUM_THREADS, seed: int = SEED) -> Trained:
    model_name = split.train.model_name
    vocabulary = schema.vocabularies(model_name, split.train.rows)
    names = [each.name for each in schema.columns(model_name)]
    categorical = schema.categorical_indices(model_name)
    params = {**BASE_PARAMS, "num_threads": num_threads, "seed": seed}
    train_set = lightgbm.Dataset(
        schema.encode(model_name, split.train.rows, vocabulary),
        label=split.train.labels,
        weight=split.train.weights,
        feature_name=names,
        categorical_feature=categorical,
        free_raw_data=True,
    )
    callbacks = []
    valid_sets = []
    validation_matrix = None
    if len(split.validation):
        validation_matrix = schema.encode(model_name, split.validation.rows, vocabulary)
        valid_sets = [
            lightgbm.Dataset(
                validation_matrix,
                label=split.validation.labels,
                weight=split.validation.weights,
                reference=train_set,
            )
        ]
        callbacks = [lightgbm.early_stopping(EARLY_STOPPING_ROUNDS, verbose=False)]
    booster = lightgbm.train(
        params, train_set, num_boost_round=MAX_ROUNDS, valid_sets=valid_sets, callbacks=callbacks
    )
    if booster.best_iteration > 0:
        booster = lightgbm.Booster(model_str=booster.model_to_string(num_iteration=booster.best_iteration))
    metrics = {}
    if validation_matrix is not None:
        probabilities = booster.predict(validation_matrix, num_threads=num_threads)
        metrics = evaluation.classification_metrics(split.validation.labels, probabilities)
    metrics["rounds"] = booster.current_iteration()
    recorded = {**params, "max_rounds": MAX_ROUNDS, "early_stopping_rounds": EARLY_STOPPING_ROUNDS}
    return Trained(model_name, booster, vocabulary, recorded, metrics)
