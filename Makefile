# attnscope: `make run` serves the built-in model, `make test` runs the whole suite.
# Both create .venv on first use and are quick on a second run.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TORCH_PIN := torch==2.13.0
DATA ?= ../shared/data/small_parallel_enja
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test install install-dev install-train install-align train train-rnn evaluate silver-alignments card-alignment heads bench lint clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_PIN)
	$(PY) -m pip install -q -e '.[explain]' $(TORCH_PIN)
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PY) -m pip install -q -e '.[dev]' $(TORCH_PIN)
	touch $@

$(VENV)/.installed-bench: $(VENV)/.installed-dev
	$(PY) -m pip install -q -e '.[bench]' $(TORCH_PIN)
	touch $@

$(VENV)/.installed-train: $(VENV)/.installed
	$(PY) -m pip install -q -e '.[train]' $(TORCH_PIN)
	touch $@

$(VENV)/.installed-align: $(VENV)/.installed
	$(PY) -m pip install -q -e '.[align]' $(TORCH_PIN)
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev
install-train: $(VENV)/.installed-train
install-align: $(VENV)/.installed-align

run: install
	$(VENV)/bin/attnscope serve --host $(HOST) --port $(PORT)

# Browser tests drive Debian's Chromium (Playwright cannot download browsers here); the CJK font
# lets Japanese tokens render. CI runs as root, so no sudo.
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium fonts-noto-cjk

test: install-dev $(CHROMIUM)
	$(PY) -m pytest -q

# Schema fuzzing at length: up to 2,000 generated requests per endpoint (endpoints without parameters
# have only a few distinct ones), at least 5,000 in all; make test runs 300+.
fuzz: install-dev
	ATTNSCOPE_FUZZ_EXAMPLES=2000 ATTNSCOPE_FUZZ_MIN_CASES=5000 $(PY) -m pytest -q tests/app/test_fuzz.py

# Load and soak over loopback: 32 clients for 60 s, then on to 10,000 requests; prints latency and RSS growth.
load: install-dev
	$(PY) bench/load.py

bench: $(VENV)/.installed-bench $(CHROMIUM)
	set -e; for script in bench/*.py; do echo "== $$script"; $(PY) $$script; done

# The shipped model in two stages: 18 epochs from scratch, then 12 more that stop rewarding <unk>,
# add politeness control and hide 10% of the source words (the best on dev BLEU is kept: an epoch,
# or the average of the last 4).
train: install-train
	$(PY) -m model.train --data $(DATA) --out runs/stage1/en-ja.pt --epochs 18
	$(PY) -m model.train --data $(DATA) --out model/checkpoints/en-ja.pt --init-from runs/stage1/en-ja.pt \
		--skip-unk-targets --politeness-control --source-word-dropout 0.1 --epochs 12 --lr 5e-4 --warmup 200 --average-last 4 --seed 2

# The second architecture (model/rnn.py): a bidirectional-GRU encoder-decoder with additive (Bahdanau)
# attention, on the same corpus; the best on dev BLEU is kept (an epoch, or the average of the last 4).
train-rnn: install-train
	$(PY) -m model.train --data $(DATA) --out model/checkpoints/en-ja-rnn.pt --arch rnn --epochs 24 --time-budget 125 \
		--lr 2e-3 --batch-tokens 2000 --warmup 400 --skip-unk-targets --source-word-dropout 0.1 --average-last 4

evaluate: install-train
	$(PY) -m model.evaluate --data $(DATA) --checkpoint model/checkpoints/en-ja.pt

# The silver reference of the AER figures (alignments/README.md): eflomal over train + test, both directions,
# grow-diag-final-and, the test pairs' links kept. eflomal takes no seed, so a rerun differs in a few links.
silver-alignments: install-align
	$(PY) -m model.silver_alignments --data $(DATA) --out alignments/silver.talp

# The AER tables and literature checks in the model card (model/card_alignment.py): every method against
# alignments/gold.talp (when present) and alignments/silver.talp, on the test set; about 10 min on 2 busy cores.
card-alignment: install-align
	$(PY) -m pip install -q -e '.[explain]' $(TORCH_PIN)
	$(PY) -m model.card_alignment --data $(DATA) --checkpoint model/checkpoints/en-ja.pt
# Which heads matter (analysis.heads): BLEU with each head off, gradient importance, confidence, entropy and
# distance on the test set, then the greedy pruning curve; writes model/checkpoints/en-ja.heads.json.
# WORKERS local processes; RAY=local (or a cluster's address) runs the same units as Ray tasks.
WORKERS ?= 2
heads: install-dev
	$(VENV)/bin/attnscope heads --model en-ja --data $(DATA) --gold alignments/gold.talp --prune --workers $(WORKERS) $(if $(RAY),--ray $(RAY))

lint: install-dev
	$(PY) -m ruff check .

clean:
	rm -rf $(VENV) .pytest_cache
