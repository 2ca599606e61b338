"""Publish a training run to Kaggle as a dataset, for offline inference in a Kaggle notebook.

``python -m tfseti.publish RUN --kaggle-dataset USER/SLUG [--dry-run]`` (``__main__``). Two steps,
one module each: ``stage`` (check the run is complete, copy what inference needs into a folder
that is itself a run folder for ``tfseti.predict``, write README.md and dataset-metadata.json)
and ``upload`` (credentials, then the kaggle package: a new dataset or a new version). The
``kaggle`` package is imported for a real upload only.
"""

from tfseti.publish.stage import (DEFAULT_INCLUDE, INCLUDES, PublishError, RunToPublish, StagedDataset,
                                  check_run, dataset_metadata, dataset_readme, parse_include, stage_run,
                                  validate_dataset_ref, validate_title)
from tfseti.publish.upload import (ApiCall, Credentials, CredentialsError, UploadResult, create_call,
                                   credentials_help, dataset_exists, find_credentials, kaggle_api, publish,
                                   version_call)

__all__ = ["ApiCall", "Credentials", "CredentialsError", "DEFAULT_INCLUDE", "INCLUDES", "PublishError",
           "RunToPublish", "StagedDataset", "UploadResult", "check_run", "create_call",
           "credentials_help", "dataset_exists", "dataset_metadata", "dataset_readme",
           "find_credentials", "kaggle_api", "parse_include", "publish", "stage_run",
           "validate_dataset_ref", "validate_title", "version_call"]
