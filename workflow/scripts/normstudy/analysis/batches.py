"""The batch-size study's tables and verdict, from its runs' final test scores in each evaluation mode.

Per variant and statistics batch size: test error over seeds with BatchNorm's running averages and, for batch norms,
with PreciseBN's recomputed statistics; each variant's change from the reference size; every batch norm against every
batch-free norm; and a convergence gate. Every claim is a paired test by seed, read as different, equivalent within
the declared margin (TOST), or inconclusive, at the declared level and correction over the sizes of one comparison;
no verdict is given where the gate finds the reference runs untrained.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from normstudy.analysis.stats import decided, over_seeds, paired_difference
from normstudy.model.norm_specs import takes_batch_statistics

if TYPE_CHECKING:  # annotations only: the figure's job, which imports this module, needs no statsmodels
    from normstudy.config.study import Plan

# Wu & He, Group Normalization (ECCV 2018), Table 2: ResNet-50's ImageNet validation error (%) by batch size per GPU.
GN_PAPER_BATCH_SIZES = (32, 16, 8, 4, 2)
GN_PAPER_ERROR = {"BN": (23.6, 23.7, 24.8, 27.3, 34.7), "GN": (24.1, 24.2, 24.0, 24.1, 24.1)}
# Norms whose statistics do not depend on the batch.
# Evaluation mode -> the runs table's error column: BatchNorm's running averages, or PreciseBN's statistics (a
# batch-free norm has none to recompute, so its precise error is its error).
MODES = {"running": "test_err", "precise": "precise_err"}

RUN_COLUMNS = (
    "variant",
    "norm",
    "batch_size",
    "sgd_batch",
    "ghost",
    "seed",
    "max_lr",
    "epochs",
    "train_images",
    "steps",
    "pack_seeds",
    "test_acc",
    "test_err",
    "precise_err",
    "test_loss",
    "train_acc",
    "train_loss",
    "seconds_per_epoch",
)
TEST_COLUMNS = ("n", "diff_mean", "se", "df", "ci95_low", "ci95_high", "p_value", "tost_p")
DECIDED = ("p_adjusted", "tost_p_adjusted", "verdict", "margin", "correction")
CHANGE_COLUMNS = ("variant", "norm", "mode", "batch_size", "reference", *TEST_COLUMNS, *DECIDED)
VERSUS_COLUMNS = (
    "variant_a", "variant_b", "mode", "batch_size", "b_batch_size", *TEST_COLUMNS, *DECIDED, "read_from"
)  # fmt: skip
# Where a comparison's reading comes from: this study's paired test, or the main study's declared family.
OWN_TEST, FAMILY = "batch study", "declared family"
# The family's columns a row read from it takes (family column -> batch comparison column).
FROM_FAMILY = {"n_seeds": "n", "diff": "diff_mean", "se": "se", "df": "df", "ci_low": "ci95_low"}
FROM_FAMILY |= {"ci_high": "ci95_high", "p_value": "p_value", "tost_p": "tost_p", "p_adjusted": "p_adjusted"}
FROM_FAMILY |= {"tost_p_adjusted": "tost_p_adjusted", "verdict": "verdict"}


def summarize(runs: pd.DataFrame) -> pd.DataFrame:
    """Per variant and size: test error over seeds in each mode (mean, sd, 95 % t-interval) and how the runs ran."""
    rows = []
    for (variant, batch_size), group in runs.groupby(["variant", "batch_size"], sort=False):
        first = group.iloc[0]
        rows.append(
            {
                "variant": variant,
                "norm": first["norm"],
                "batch_size": int(batch_size),
                "sgd_batch": int(first["sgd_batch"]),
                "max_lr": first["max_lr"],
                "steps": int(first["steps"]),
                "n_seeds": len(group),
                **over_seeds(group["test_err"], "test_err"),
                **over_seeds(group["precise_err"], "precise_err"),
                "test_acc_mean": group["test_acc"].mean(),
                "test_loss_mean": group["test_loss"].mean(),
                "packed": bool((group["pack_seeds"] > 1).any()),
                "seconds_per_epoch_mean": group["seconds_per_epoch"].mean(),
            }
        )
    return pd.DataFrame(rows)


def errors_at(runs: pd.DataFrame, variant: str, batch_size: int, mode: str) -> pd.Series:
    """One cell's errors in one mode, by seed."""
    cell = runs[(runs["variant"] == variant) & (runs["batch_size"] == batch_size)]
    return cell.set_index("seed")[MODES[mode]]


def decided_rows(rows: list[dict], keys: list[str], plan: Plan, columns: tuple[str, ...]) -> pd.DataFrame:
    """The rows with p and TOST p corrected as declared within each group of `keys`, and each row's reading at the
    declared level (`columns`, in order, also when there is no row)."""
    table = pd.DataFrame(rows, columns=[name for name in columns if name not in DECIDED])
    if table.empty:
        return pd.DataFrame(columns=list(columns))
    table = decided(table, plan.correction, plan.alpha, within=keys)
    table["margin"], table["correction"] = plan.margin, plan.correction
    return table[list(columns)]


def changes_from_reference(runs: pd.DataFrame, plan: Plan) -> pd.DataFrame:
    """Per variant run at several sizes, mode and size: its error there minus at the reference (largest) size,
    paired by seed (a seed gives a variant the same initial weights at every size); corrected over the sizes."""
    reference, rows = int(runs["batch_size"].max()), []
    for variant, group in runs.groupby("variant", sort=False):
        sizes = sorted(set(group["batch_size"]) - {reference})
        for mode in MODES:
            base = errors_at(runs, variant, reference, mode)
            for size in sizes:
                test = paired_difference(errors_at(runs, variant, size, mode), base, plan.margin)
                rows.append({"variant": variant, "norm": group["norm"].iloc[0], "mode": mode,
                             "batch_size": int(size), "reference": reference, **test})  # fmt: skip
    return decided_rows(rows, ["variant", "mode"], plan, CHANGE_COLUMNS)


def batch_and_free(norms: dict[str, str]) -> tuple[list[str], list[str]]:
    """The variants (of variant -> norm) whose norm takes batch statistics, and those whose norm does not."""
    batch = [variant for variant, norm in norms.items() if takes_batch_statistics(norm)]
    return batch, [variant for variant in norms if variant not in batch]


def batch_norm_versus_free(runs: pd.DataFrame, plan: Plan) -> pd.DataFrame:
    """Every batch norm at every size against every batch-free norm (at that size if it ran there, else at its own
    reference: it does not depend on the size), error a - b paired by seed; corrected over the sizes of each pair."""
    norms = dict(zip(runs["variant"], runs["norm"], strict=False))
    batch, free = batch_and_free(norms)
    rows = []
    for a in batch:
        for b in free:
            b_sizes = set(runs.loc[runs["variant"] == b, "batch_size"])
            for mode in MODES:
                for size in sorted(set(runs.loc[runs["variant"] == a, "batch_size"])):
                    b_size = size if size in b_sizes else max(b_sizes)
                    a_err, b_err = errors_at(runs, a, size, mode), errors_at(runs, b, b_size, mode)
                    test = paired_difference(a_err, b_err, plan.margin)
                    rows.append({"variant_a": a, "variant_b": b, "mode": mode, "batch_size": int(size),
                                 "b_batch_size": int(b_size), **test, "read_from": OWN_TEST})  # fmt: skip
    return decided_rows(rows, ["variant_a", "variant_b", "mode"], plan, VERSUS_COLUMNS)


def read_from_family(versus: pd.DataFrame, family: pd.DataFrame, main_cells: set[tuple[str, int]]) -> pd.DataFrame:
    """One comparison, one reading: a row whose two cells are the main study's own runs (`main_cells`: (variant,
    size) whose every run is a main-study run), scored with their running statistics, compares what the declared
    family already judges when a is the family's reference and b one of its variants. Such a row takes the family's
    difference (error a - b is accuracy b - a, the family's sign), interval, corrected p-values and reading."""
    table, judged = versus.copy(), family.set_index(["reference", "variant"])
    for index, row in table.iterrows():
        cells = {(row.variant_a, row.batch_size), (row.variant_b, row.b_batch_size)}
        if row["mode"] == "running" and cells <= main_cells and (row.variant_a, row.variant_b) in judged.index:
            found = judged.loc[(row.variant_a, row.variant_b)]
            for source, target in FROM_FAMILY.items():
                table.loc[index, target] = found[source]
            table.loc[index, "read_from"] = FAMILY
    return table


def convergence_gate(summary: pd.DataFrame, main: pd.DataFrame, margin: float) -> pd.DataFrame:
    """Per variant: its reference cell's mean test accuracy against the main study's, and whether it is within
    `margin` points (trained enough for the study to be read)."""
    reference = int(summary["batch_size"].max())
    main_acc = main.set_index("variant")["test_acc_mean"]
    rows = []
    for row in summary[summary["batch_size"] == reference].itertuples():
        shortfall = float(main_acc[row.variant] - row.test_acc_mean) if row.variant in main_acc else float("nan")
        rows.append({"variant": row.variant, "main_acc": main_acc.get(row.variant, float("nan")),
                     "reference_acc": row.test_acc_mean, "shortfall": shortfall, "margin": margin,
                     "trained": bool(shortfall <= margin)})  # fmt: skip
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class Ordering:
    """Whether the GN paper's ordering held here, and the sentences that say so."""

    verdict: str  # holds | holds in part | does not hold | inconclusive | not tested
    sentences: tuple[str, ...]

    @property
    def text(self) -> str:
        """The sentences as one paragraph."""
        return " ".join(self.sentences)


def paper_sentence() -> str:
    """The GN paper's own figures and design, to read ours beside."""
    (bn, gn), sizes = GN_PAPER_ERROR.values(), GN_PAPER_BATCH_SIZES
    return (
        f"In the GN paper (ResNet-50 on ImageNet, images per GPU {sizes[0]} → {sizes[-1]}, with the SGD batch 8 × that "
        "and the learning rate scaled with it, so that the statistics' noise and the gradient's changed together) "
        f"BN's validation error rose from {bn[0]} % to {bn[-1]} % ({bn[-1] - bn[0]:+.1f} points, "
        f"{bn[-1] / bn[0]:.1f}× its error) while GN's went from {gn[0]} % to {gn[-1]} %."
    )


def tested(row: pd.Series) -> str:
    """'+1.19 points (95 % CI +0.19 to +2.20; different, Holm p = 0.012)' from a test row."""
    if pd.isna(row["p_value"]):
        return f"{row['diff_mean']:+.2f} points (not testable: too few seeds or no spread)"
    name = row["correction"].title()
    said = {
        "not tested": "not tested: a reference run in it is not trained",
        "different": f"different, {name} p = {row['p_adjusted']:.3f}",
        "equivalent": f"equivalent within ±{row['margin']:g}, TOST {name} p = {row['tost_p_adjusted']:.3f}",
        "inconclusive": f"inconclusive at ±{row['margin']:g}",
    }[row["verdict"]]
    return f"{row['diff_mean']:+.2f} points (95 % CI {row['ci95_low']:+.2f} to {row['ci95_high']:+.2f}; {said})"


def gate_sentence(gate: pd.DataFrame) -> tuple[bool, str]:
    """Whether every reference is trained, and the sentence that says so."""
    parts = [f"{r.variant} {r.reference_acc:.2f} % against {r.main_acc:.2f} %" for r in gate.itertuples()]
    margin = gate["margin"].iloc[0]
    if gate["trained"].all():
        return True, (
            f"Convergence gate passed: every reference run is within {margin:g} points of the main study's accuracy "
            f"({'; '.join(parts)})."
        )
    short = ", ".join(gate.loc[~gate["trained"], "variant"])
    return False, (
        f"Not tested: runs not trained. The reference runs of {short} are more than {margin:g} points below the main "
        f"study's accuracy ({'; '.join(parts)}), so differences between sizes would measure training, not the norm."
    )


def gated(table: pd.DataFrame, gate: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    """The table with "not tested" as the reading of each row naming (in `columns`) a variant whose reference runs the
    convergence gate found untrained: its numbers stay, as description; its reading would measure training."""
    untrained = set(gate.loc[~gate["trained"], "variant"])
    involved = table[list(columns)].isin(untrained).any(axis=1)
    return table.assign(verdict=table["verdict"].mask(involved, "not tested"))


def crossover(versus: pd.DataFrame, bn: str, free: str, mode: str) -> str:
    """Where batch norm `bn` falls behind `free`: the largest size at which it is significantly worse, with its test;
    or that it is behind at none."""
    pair = versus[(versus["variant_a"] == bn) & (versus["variant_b"] == free) & (versus["mode"] == mode)]
    behind = pair[(pair["verdict"] == "different") & (pair["diff_mean"] > 0)]
    if behind.empty:
        return f"{bn} is not shown behind {free} at any size"
    row = behind.loc[behind["batch_size"].idxmax()]
    return f"{bn} falls behind {free} from size {int(row['batch_size'])} down: {bn} − {free} {tested(row)}"


def judged(change: pd.Series, behind_all: bool, free_flat: bool) -> str:
    """The verdict from batch norm's change at the smallest size, whether it is behind every batch-free norm there,
    and whether the batch-free norms are flat (equivalent, or independent of the size by construction)."""
    if change["verdict"] == "different" and change["diff_mean"] > 0:
        return "holds" if behind_all and free_flat else "holds in part"
    if change["verdict"] == "equivalent" or (change["verdict"] == "different" and change["diff_mean"] < 0):
        return "does not hold"
    return "inconclusive"


def error_ratio(summary: pd.DataFrame, variant: str, mode: str, size: int, reference: int) -> str:
    """'1.9 times its error at 128': a variant's mean error at `size` as a multiple of the reference's (with both)."""
    column = f"{MODES[mode]}_mean"
    errors = summary[summary["variant"] == variant].set_index("batch_size")[column]
    base, small = float(errors[reference]), float(errors[size])
    times = f"{small / base:.1f}×" if base > 0 else "no multiple (no error at the reference)"
    return f"{times} its error at {reference} ({base:.2f} % → {small:.2f} %)"


def described(
    changes: pd.DataFrame,
    versus: pd.DataFrame,
    batch: list[str],
    free: list[str],
    ghost: bool,
    summary: pd.DataFrame,
) -> tuple[list[str], dict[str, list[str]]]:
    """Each batch norm's change from the reference to the smallest size (in points and as a multiple of its error)
    and where it falls behind each batch-free norm, in both evaluation modes; and each mode's verdicts."""
    smallest, reference = int(changes["batch_size"].min()), int(changes["reference"].iloc[0])
    sentences, verdicts = [], {"running": [], "precise": []}
    for bn in batch:
        for mode, label in (("running", "running averages"), ("precise", "PreciseBN")):
            row = changes[(changes["variant"] == bn) & (changes["mode"] == mode) & (changes["batch_size"] == smallest)]
            change = row.iloc[0]
            ratio = error_ratio(summary, bn, mode, smallest, reference)
            sentences.append(f"{bn}'s error from size {reference} to {smallest} ({label}): {tested(change)}; {ratio}.")
            if free:
                sentences.append("; ".join(crossover(versus, bn, other, mode) for other in free) + f" ({label}).")
            at_smallest = versus[(versus["variant_a"] == bn) & versus["variant_b"].isin(free)
                                 & (versus["mode"] == mode) & (versus["batch_size"] == smallest)]  # fmt: skip
            behind_all = bool(((at_smallest["verdict"] == "different") & (at_smallest["diff_mean"] > 0)).all())
            flat_rows = changes[changes["variant"].isin(free) & (changes["mode"] == mode)]
            free_flat = ghost or bool((flat_rows["verdict"] == "equivalent").all())
            verdicts[mode].append(judged(change, behind_all, free_flat))
    return sentences, verdicts


def ordering(
    summary: pd.DataFrame, changes: pd.DataFrame, versus: pd.DataFrame, gate: pd.DataFrame, ghost: bool
) -> Ordering:
    """Does batch norm degrade at small statistics batches while the batch-free norms stay flat, as in the GN paper?

    Only where the gate passed. Holds when batch norm's error at the smallest size is significantly above its
    reference's, it is significantly behind every batch-free norm there, and those are flat (by construction in the
    ghost design; shown equivalent within the margin otherwise); does not hold when batch norm's change is shown
    equivalent (or an improvement); inconclusive otherwise. Judged on the running averages, PreciseBN's said beside.
    Where the gate failed, no verdict: the figures of the variants whose references passed are still said.
    """
    norms = dict(zip(summary["variant"], summary["norm"], strict=False))
    batch, free = batch_and_free(norms)
    if not batch or not free or changes.empty:
        needs = f"The ordering needs a batch norm at several sizes and a batch-free norm; it has {', '.join(norms)}."
        return Ordering("not tested", (needs, paper_sentence()))
    passed, gate_said = gate_sentence(gate)
    trained = set(gate.loc[gate["trained"], "variant"])
    sentences, verdicts = described(
        changes, versus, [v for v in batch if v in trained], [v for v in free if v in trained], ghost, summary
    )
    if not passed:
        if sentences:
            sentences.insert(0, "The runs whose references did pass, described without a verdict on the ordering:")
        return Ordering("not tested", (gate_said, *sentences, paper_sentence()))
    if ghost:
        have = "has" if len(free) == 1 else "have"
        sentences.append(f"{', '.join(free)} {have} no batch statistics: the statistics batch cannot change them.")
    verdict, precise = (
        (found[0] if len(set(found)) == 1 else "holds in part") if found else "not tested"
        for found in (verdicts["running"], verdicts["precise"])
    )
    leads = GHOST_LEADS if ghost else PAPER_LEADS
    lead = leads[verdict] + (
        f" (judged on the running averages; with PreciseBN's statistics: {leads[precise][0].lower()}"
        f"{leads[precise][1:]})"
        if precise != verdict
        else ""
    )
    return Ordering(verdict, (f"{lead}.", gate_said, *sentences, paper_sentence()))


# The verdict's lead sentence. The ghost design changes the statistics alone, and the batch-free norms cannot change
# with it: what it tests is BatchNorm's small-statistics penalty, not the GN paper's whole ordering.
GHOST_LEADS = {
    "holds": "BatchNorm's small-statistics penalty is shown here: its error rises at the smallest statistics batch and "
    "falls behind every batch-free norm there (the batch-free norms' flatness is by construction: they take no batch "
    "statistics)",
    "holds in part": "BatchNorm's small-statistics penalty is shown in part here",
    "does not hold": "No small-statistics penalty of BatchNorm is found here",
    "inconclusive": "Whether BatchNorm has a small-statistics penalty here is inconclusive",
    "not tested": "Not tested",
}
PAPER_LEADS = {
    "holds": "The GN paper's ordering holds here",
    "holds in part": "The GN paper's ordering holds in part here",
    "does not hold": "The GN paper's ordering does not hold here",
    "inconclusive": "Whether the GN paper's ordering holds here is inconclusive",
    "not tested": "Not tested",
}
