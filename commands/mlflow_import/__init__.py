"""Moving a registry from MLflow: ``modelledger migrate mlflow``
(docs/how-to/migrate-from-mlflow.md).

wanted.py says what MLflow's objects become, imported.py what earlier imports recorded,
plan.py the commands between the two, run.py one import from reading to recording.
"""
