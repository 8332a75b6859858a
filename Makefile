# One command to run the app, one to run every test. Each sets itself up first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
NPM := npm --no-audit --no-fund --loglevel=error
FRONTEND_SOURCES := $(shell find frontend/src -type f 2>/dev/null) frontend/build.mjs

.PHONY: setup run demo test check lint typecheck bench browser dovecot caddy pango clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

tests/node/node_modules/.installed: tests/node/package-lock.json
	$(NPM) ci --prefix tests/node
	touch $@

frontend/node_modules/.installed: frontend/package-lock.json
	$(NPM) ci --prefix frontend
	touch $@

# The editor bundle the server serves at /static/editor/ (pinned bundler, no CDN).
frontend/dist/editor.js: frontend/node_modules/.installed $(FRONTEND_SOURCES)
	$(NPM) run build --prefix frontend

# Browser tests drive Debian's Chromium; Playwright's own browser download is not used.
browser:
	@command -v chromium >/dev/null 2>&1 || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } || \
	  echo "Chromium could not be installed: the browser tests will say so."

# The IMAP-polling tests run Debian's Dovecot on loopback (no system service is started).
dovecot:
	@test -x /usr/sbin/dovecot || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dovecot-imapd \
	    && { systemctl disable --now dovecot >/dev/null 2>&1 || service dovecot stop >/dev/null 2>&1 || true; }; } || \
	  echo "Dovecot could not be installed: the IMAP tests will say so."

# The deployment test has Debian's Caddy check deploy/Caddyfile (its service is not started).
caddy:
	@command -v caddy >/dev/null 2>&1 || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq caddy \
	    && { systemctl disable --now caddy >/dev/null 2>&1 || service caddy stop >/dev/null 2>&1 || true; }; } || \
	  echo "Caddy could not be installed: the deployment test will say so."

# The PDF export is laid out by WeasyPrint, which uses Pango and HarfBuzz and a font (DejaVu).
PANGO_PACKAGES := libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core
pango:
	@{ ldconfig -p | grep -q libpangoft2-1.0 && fc-list | grep -q DejaVuSans; } || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(PANGO_PACKAGES); } || \
	  echo "Pango could not be installed: PDF exports will fail until it is ($(PANGO_PACKAGES))."

setup: $(VENV)/.installed tests/node/node_modules/.installed frontend/dist/editor.js

# The demo's third organisation signs in through its own OpenID provider: the npm
# oidc-provider on loopback (tests/node/oidc-provider.mjs; development only, never in the
# image), with the people of tests/node/demo-accounts.json. Its client and tenant are the
# ones `opendpia demo` configures (server/services/demo.py).
DEMO_IDP_PORT ?= 8090
DEMO_BASE_URL ?= $(or $(OPENDPIA_BASE_URL),http://127.0.0.1:8000)
DEMO_IDP := node tests/node/oidc-provider.mjs --port $(DEMO_IDP_PORT) --name demo \
	--client-id opendpia-demo --client-secret opendpia-demo-client-secret \
	--tid demo-islington-tenant --accounts tests/node/demo-accounts.json \
	--redirect-uri $(DEMO_BASE_URL)/login/oidc/callback --keep-running

demo: $(VENV)/.installed
	$(BIN)/opendpia demo --idp http://127.0.0.1:$(DEMO_IDP_PORT)

run: $(VENV)/.installed frontend/dist/editor.js tests/node/node_modules/.installed pango demo
	@mkdir -p var
	@$(DEMO_IDP) > var/demo-idp.log 2>&1 & \
	  trap 'kill $$! 2>/dev/null' EXIT INT TERM; \
	  echo "Islington's OpenID provider: http://127.0.0.1:$(DEMO_IDP_PORT) (log: var/demo-idp.log)"; \
	  $(BIN)/opendpia serve

# Two workers, each taking whole test files (their fixtures stay together): the suite is
# mostly waiting on sockets, browsers and databases, so two share two cores well. Files go
# in collection order, the slow browser files first (pytest-xdist would otherwise start the
# files with the most tests first, leaving the browser files as a tail; measured about
# even with two workers: decision 137).
TEST_WORKERS ?= 2
test: setup browser dovecot caddy pango
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

lint: $(VENV)/.installed
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/lint-imports

typecheck: $(VENV)/.installed
	$(BIN)/mypy

check: lint typecheck test

bench: $(VENV)/.installed
	bash bench/run.sh

clean:
	rm -rf $(VENV) var tests/node/node_modules frontend/node_modules frontend/dist bench/node/node_modules
