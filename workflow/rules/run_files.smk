# Before any job (and in dry runs): every existing settings.json of a run the config plans (study, tuning, batch
# study) must be as write_settings left it. One edited by hand would be trained, evaluated and published under
# its run's name while the config says otherwise; one the config has since changed is fine (Snakemake rebuilds
# it, its params changed).
from normstudy.settings import settings_file_problem

SHOWN_PROBLEMS = 5


def planned_settings():
    """(settings.json, a function giving the settings the config implies there) for every run the config plans."""
    for variant in enabled_variants():
        for seed in STUDY.seeds:
            yield f"{RUN}/settings.json".format(variant=variant, seed=seed), partial(
                run_settings, STUDY, variant, seed
            )
    for run in tuning_manifest():
        yield run["settings"], partial(
            tuning_settings, STUDY, run["variant"], run["point"], run["seed"]
        )
    for run in batch_manifest():
        yield run["settings"], partial(
            batch_run_settings, STUDY, run["variant"], run["batch_size"], run["seed"]
        )


def run_file_problems():
    """What is wrong with the planned runs' existing settings files, one line each."""
    found = (
        settings_file_problem(path, expected())
        for path, expected in planned_settings()
        if os.path.exists(path)
    )
    return [problem for problem in found if problem]


RUN_FILE_PROBLEMS = run_file_problems()
if RUN_FILE_PROBLEMS:
    more = len(RUN_FILE_PROBLEMS) - SHOWN_PROBLEMS
    raise WorkflowError(
        "\n".join(
            RUN_FILE_PROBLEMS[:SHOWN_PROBLEMS]
            + ([f"... and {more} more settings files like these"] if more > 0 else [])
        )
    )
