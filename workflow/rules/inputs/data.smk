# The dataset's paths and inputs, and the check of its files before any job (its rules: data.smk).
from normstudy.data.datasets import (
    all_datasets,
    dataset_spec,
    ROLES,
    raw_paths,
    raw_paths_of_folder,
    spec_of_folder,
)
from normstudy.data.idx import DataIntegrityError, check_present, check_unchanged

# The folders of the registry's fetched datasets: the fetch rule's wildcard, one of these exactly.
FETCHED_FOLDERS = "|".join(
    re.escape(spec.folder) for spec in all_datasets().values() if spec.fetched
)


def raw_data_files():
    """Role -> path of the configured dataset's four IDX files and its provenance.json."""
    return raw_paths(STUDY.data.dataset)


def data_files(roles=ROLES):
    """Input function: the IDX files of `roles` (all four unless told), refused when one is missing though the
    provenance records it. Asked only by the jobs a run plans, so a search that never reads the test files runs
    without them."""

    def present(wildcards):
        paths = [raw_data_files()[role] for role in roles]
        try:
            check_present(paths, raw_data_files()["provenance"])
        except DataIntegrityError as error:
            raise WorkflowError(str(error)) from None
        return paths

    return present


try:
    # An edited data file is refused here, before Snakemake deletes the outputs that depend on it.
    check_unchanged(
        [raw_data_files()[role] for role in ROLES], raw_data_files()["provenance"]
    )
except (DataIntegrityError, UnreadableFileError) as error:
    raise WorkflowError(str(error)) from None
