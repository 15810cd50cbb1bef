# The two set-up commands of the README.  Each installs what it needs into .venv first.
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first, pinned: anything that later depends on torch then finds it instead of a CUDA build
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[torch,jax,rl,draw,plot,connectome,bench,interop,lsp,highlight,docs,dev]"
	touch $@

# graphviz's `dot` renders SVG/PNG; DOT text needs no binary.  Installed from Debian when missing and root.
$(VENV)/.dot:
	@command -v dot >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && apt-get install -y -qq graphviz >/dev/null; } \
	  || echo "warning: graphviz 'dot' not installed; SVG/PNG rendering will fail (apt-get install graphviz)"
	@mkdir -p $(VENV) && touch $@

# jNeuroML (shipped inside pyNeuroML) runs on Java: Debian's headless JRE when missing and root.  Without it a
# NeuroML2 export still validates against the schema and its report says nothing ran.
$(VENV)/.java:
	@command -v java >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && apt-get install -y -qq default-jre-headless >/dev/null; } \
	  || echo "warning: no Java runtime; NeuroML2 exports will not be run under jNeuroML (apt-get install default-jre-headless)"
	@mkdir -p $(VENV) && touch $@

# The main job: check the models, print the summary of each circuit, run the swimmer through the dm-control
# swimmer and plot its traces, draw it.
run: $(VENV)/.installed $(VENV)/.dot $(VENV)/.java
	$(VENV)/bin/circuitdsl check models/*.circuit
	$(VENV)/bin/circuitdsl ir models/ncap_swimmer.circuit --arg joints=9 > $(VENV)/ncap_swimmer_9.json
	@echo "IR of the 9-joint swimmer written to $(VENV)/ncap_swimmer_9.json"
	$(VENV)/bin/circuitdsl run models/ncap_swimmer.circuit --steps 200 --env swim --plot $(VENV)/ncap_swimmer_traces.png
	$(VENV)/bin/circuitdsl draw models/ncap_swimmer.circuit -o $(VENV)/ncap_swimmer.svg

test: $(VENV)/.installed $(VENV)/.dot $(VENV)/.java
	$(PY) -m pytest -q
