# normstudy: `make study` runs the default study, `make test` the test suite; both build .venv first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CORES ?= all
# Workflow profile of `make study`: default (local cores) or slurm (through sbatch; see docs/cluster-gpu.md).
PROFILE ?= default
# The study's own Snakemake arguments, for `make study` and `make verify`, e.g. STUDY_ARGS='--configfile my.yaml'.
STUDY_ARGS ?=
# The study's name (config `study`, where a target needs its folders results/<study>/ and report/<study>/) is said once,
# in its config: workflow/scripts/study_name.py resolves it from STUDY_ARGS as the workflow does.
# make compare's two studies: each a study folder (results/<study>), a study's name, or a git revision.
A ?=
B ?=
# RUN=yes lets make compare run a revision's study whose results are absent or out of date (never silently).
RUN ?=
# Extra pytest arguments, e.g. PYTEST_ARGS='-m "not browser"' on a machine where Chromium cannot be installed.
PYTEST_ARGS ?=
# Snakemake's shell steps call `python`: the virtual environment's comes first.
export PATH := $(abspath $(BIN)):$(PATH)
# User values reach the recipes as environment variables, never as text make pastes into a shell line: a quote or
# `;` in one is data. Word lists (STUDY_ARGS, PYTEST_ARGS) are split by split_args.py, as a shell splits words, and
# never interpreted.
export CORES PROFILE STUDY_ARGS A B RUN PYTEST_ARGS
WITH_STUDY_ARGS := python workflow/scripts/split_args.py --append STUDY_ARGS --
# The study's name as a shell variable `name` (refused, and the recipe stopped, unless it is a safe folder name).
STUDY_NAME := name=$$($(WITH_STUDY_ARGS) python workflow/scripts/study_name.py) || exit 2

.PHONY: venv system-deps study verify tune tune-pieces record-tuning publish snakemake-report compare smoke test bench lint format clean

venv: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(None if sys.version_info[:2] >= (3, 11) else "normstudy needs Python >= 3.11, found " + sys.version.split()[0])'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -r requirements-dev.txt
	touch $@

study: venv
	$(WITH_STUDY_ARGS) snakemake --workflow-profile "profiles/$$PROFILE" --cores "$$CORES"

# Audit a finished study against its config, running nothing: what is missing or out of date, models and records
# of other settings, and the one command that rebuilds exactly that (exit status 0 only when all holds).
verify: venv
	$(WITH_STUDY_ARGS) python workflow/scripts/verify.py

# The recipe search on the validation split (config `tune`; results/<study>/tuning/). Not part of `study`.
tune: venv
	$(WITH_STUDY_ARGS) snakemake --workflow-profile "profiles/$$PROFILE" --cores "$$CORES" tune

# Keep a finished search in the repository (workflow/resources/tuning/), where the report's method section
# reads it: the study's report then never waits for a search. Then copy results/tuning/chosen.yaml's values
# into config.yaml, each with a comment citing the table. Another study's search (a norm searched on its own, the
# zoo's in pieces) is kept beside it, in workflow/resources/tuning/pieces/<study>/, and shown beside it.
TUNING_RECORD := summary.csv runs.csv search.json validation_accuracy.png validation_accuracy.svg
record-tuning: venv
	@$(STUDY_NAME); \
	for file in $(TUNING_RECORD); do test -s "results/$$name/tuning/$$file" || { echo "results/$$name/tuning/$$file is missing: run make tune first" >&2; exit 2; }; done; \
	dest=workflow/resources/tuning; test "$$name" = default || dest="$$dest/pieces/$$name"; \
	mkdir -p "$$dest"; \
	for file in $(TUNING_RECORD); do cp "results/$$name/tuning/$$file" "$$dest/"; done; \
	echo "recorded in $$dest/"; \
	cat "results/$$name/tuning/chosen.yaml"

# The recipe search in pieces, one norm at a time (studies/tuning/<name>.yaml, each the study tune_<name>): every piece
# not yet recorded is searched and recorded as it lands, so the zoo's search can be stopped and resumed across days.
tune-pieces: venv
	@for file in studies/tuning/*.yaml; do \
	  name=tune_$$(basename "$$file" .yaml); \
	  if test -s "workflow/resources/tuning/pieces/$$name/search.json"; then echo "$$name: recorded"; continue; fi; \
	  $(MAKE) --no-print-directory tune STUDY_ARGS="--configfile $$file" || exit 2; \
	  $(MAKE) --no-print-directory record-tuning STUDY_ARGS="--configfile $$file" || exit 2; \
	done

# report/<study>/site/: index.html with the figures (SVG, PNG) and tables (CSV) beside it, for any static host.
publish: venv
	$(WITH_STUDY_ARGS) snakemake --cores "$$CORES" publish

# Snakemake's own report (a zip of every labelled figure and table), with the study's commit, config digest and Key
# results on its landing page.
snakemake-report: venv
	$(WITH_STUDY_ARGS) snakemake --cores "$$CORES" report_metadata
	@$(STUDY_NAME); $(WITH_STUDY_ARGS) snakemake --report "report/$$name/snakemake-report.zip" --report-metadata "results/$$name/report_metadata.yaml"

# Two finished studies side by side (workflow/scripts/compare.py): config and environment diff, each shared variant's
# accuracy (read from the run files) with a test of the difference, the runs whose predictions changed, both curves,
# and one verdict. A git revision's study is taken from results/compare/revisions/ when a finished one is kept there;
# else only RUN=yes lets make compare run that revision's workflow code (planning its study is running its Snakefile):
# it uses this checkout's results when they are up to date for it, or runs its study (STUDY_ARGS chooses which).
# Writes results/compare/<A>..<B>/compare.html.
compare: venv
	@test -n "$$A" -a -n "$$B" || { echo "usage: make compare A=<study folder, name or git revision> B=<the same>" >&2; exit 2; }
	python workflow/scripts/compare.py --study-args="$$STUDY_ARGS" --cores="$$CORES" $(if $(RUN),--run) -- "$$A" "$$B"

smoke: venv
	snakemake --cores "$$CORES" --configfile tests/smoke.yaml

# The Debian packages the selected tests need (Chromium today): installed when missing, never silently skipped.
system-deps: venv
	python tests/system_deps.py --pytest-args="$$PYTEST_ARGS"

test: venv system-deps
	python workflow/scripts/split_args.py --append PYTEST_ARGS -- pytest

# Training throughput of the engine against the write-ups' loop, on real MNIST (downloaded first).
bench: venv
	snakemake --cores 1 results/data/MNIST/raw/provenance.json
	python tests/benchmarks/bench_training.py --data-root results/data

lint: venv
	python tests/check_sizes.py
	ruff check .
	ruff format --check .
	snakefmt --check Snakefile workflow/rules
	snakemake --lint

format: venv
	ruff check --fix .
	ruff format .
	snakefmt Snakefile workflow/rules

clean:
	rm -rf results/* report/* .snakemake
	git checkout -- results/README.md report/README.md
