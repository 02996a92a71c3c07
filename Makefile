# cxm: `make run` to try it, `make test` to test it. See README.md.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/cxm
CELERY_BROKER_URL ?= redis://127.0.0.1:6379/0

PO := $(wildcard locale/*/LC_MESSAGES/django.po)
MO := $(PO:.po=.mo)
# makemessages and compilemessages walk the whole tree; these are not ours.
I18N_IGNORE := --ignore=.venv --ignore=var --ignore=staticfiles --ignore=node_modules

.PHONY: help venv system gettext chromium fonts wrk run test bench lint messages vendor

## help: this list
help:
	@sed -n 's/^## //p' $(MAKEFILE_LIST)

## venv: the virtualenv in .venv, with requirements.txt installed
venv: $(VENV)/.installed

# pip runs again only when requirements.txt changed since the last install.
$(VENV)/.installed: requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@touch $@

## system: Debian packages the tests need (Chromium, Korean fonts, gettext), if missing
system: chromium fonts gettext

chromium:
	@test -x /usr/bin/chromium || { \
	  echo "Installing chromium (browser tests)"; \
	  apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# Hangul for the browser tests' screenshots (a phone has its own Korean font).
fonts:
	@fc-list 2>/dev/null | grep -qi nanum || { \
	  echo "Installing fonts-nanum (Korean in screenshots)"; \
	  apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-nanum >/dev/null; }

# axe-core, which the browser tests inject into pages, from the npm registry.
node_modules/.installed: package.json package-lock.json
	@command -v npm >/dev/null || { \
	  echo "Installing Node.js and npm (axe-core for the browser tests)"; \
	  apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null; }
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

gettext:
	@command -v msgfmt >/dev/null || { \
	  echo "Installing gettext (message catalogs)"; \
	  apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gettext >/dev/null; }

# A catalog is compiled again only when its .po is newer than its .mo.
$(MO): %.mo: %.po | venv
	@command -v msgfmt >/dev/null || $(MAKE) --no-print-directory gettext
	$(PY) manage.py compilemessages $(I18N_IGNORE)

## run: demo data, an admin account, then web + Celery worker + beat (Ctrl-C stops)
run: venv $(MO)
	@scripts/run.sh

## test: the whole suite on PostgreSQL and Redis (started by you, or by .ci/run)
test: venv system node_modules/.installed $(MO)
	@DATABASE_URL=$(DATABASE_URL) CELERY_BROKER_URL=$(CELERY_BROKER_URL) \
	  $(PY) scripts/services_check.py
	DATABASE_URL=$(DATABASE_URL) CELERY_BROKER_URL=$(CELERY_BROKER_URL) \
	  $(VENV)/bin/pytest

## bench: the benchmarks in bench/, never part of `make test` (sizes: bench/run.py)
bench: venv wrk
	$(PY) bench/run.py

# The load generator of the answer throughput figure.
wrk:
	@test -x /usr/bin/wrk || { \
	  echo "Installing wrk (answer throughput benchmark)"; \
	  apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }

## lint: formatting and lint checks
lint: venv
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .

## messages: extract the Korean catalog from Python and templates, then compile
messages: venv gettext
	$(PY) manage.py makemessages -l ko $(I18N_IGNORE)
	$(PY) manage.py compilemessages -l ko $(I18N_IGNORE)

## vendor: copy Chart.js from node_modules into static/vendor/ (committed; no CDN)
vendor: node_modules/.installed
	mkdir -p static/vendor/chartjs
	cp node_modules/chart.js/dist/chart.umd.min.js node_modules/chart.js/LICENSE.md \
	  static/vendor/chartjs/
