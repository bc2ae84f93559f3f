# The recipe search's paths, manifests and run settings (its rules: tune.smk).

TUNING_RECORD = {
    "summary": "workflow/resources/tuning/summary.csv",
    "search": "workflow/resources/tuning/search.json",
    "figure": "workflow/resources/tuning/validation_accuracy.png",
}


# Searches recorded beside it, one folder per study that ran one (`make record-tuning` of a study other than the
# default): a norm's search can be run on its own, on one machine, and recorded as it lands. A report shows (and
# reruns for) only the pieces of norms it studies: the zoo's pieces are not the default study's evidence.
def studies_piece(search):
    """Whether this study runs every variant of a recorded piece (its search.json)."""
    searched = json.loads(search.read_text(encoding="utf-8"))["variants"]
    return set(searched) <= set(enabled_variants())


TUNING_PIECES = sorted(
    str(path.parent)
    for path in Path("workflow/resources/tuning/pieces").glob("*/search.json")
    if studies_piece(path)
)
TUNING_PIECE_FILES = [
    f"{piece}/{name}"
    for piece in TUNING_PIECES
    for name in ("summary.csv", "search.json", "validation_accuracy.png")
]


TUNING_RUN = in_study("<results>/tuning/runs/{variant}/{point}/seed{seed}")
TUNING_FIGURE = in_study("<results>/tuning/validation_accuracy")


def tuning_settings_json(wildcards):
    """One tuning run's typed settings as canonical JSON."""
    settings = tuning_settings(
        STUDY, studied_variant(wildcards), wildcards.point, int(wildcards.seed)
    )
    return settings.to_json()


def tuning_manifest():
    """Per tuning run, in config order: variant, grid point, seed and its files."""
    return [
        {
            "variant": variant,
            "point": point,
            "seed": seed,
            **{
                name: f"{TUNING_RUN}/{name}.{ext}".format(
                    variant=variant, point=point, seed=seed
                )
                for name, ext in (
                    ("settings", "json"),
                    ("history", "csv"),
                    ("job", "json"),
                )
            },
        }
        for variant in enabled_variants()
        for point in tuning_points(STUDY)
        for seed in STUDY.tune.seeds
    ]


def tuning_files(name):
    """One file of every tuning run, in manifest order."""
    return [run[name] for run in tuning_manifest()]


def tuning_config():
    """The config slice the tuning summary reads: the grid, seeds, variants, recipe and data identity (its rerun
    trigger; the script is given the whole typed study)."""
    keys = ("variants", "train", "tune")
    data = {
        key: STUDY.values["data"][key]
        for key in ("dataset", "synthetic", "mean", "std", "validation")
    }
    # Not sorted: the grid's key order names the points.
    return json.dumps({**{key: STUDY.values[key] for key in keys}, "data": data})
