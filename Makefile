# tempwatch — build, test, lint and run. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

GO        ?= go
BIN       := .bin
FUNCTIONS := $(notdir $(patsubst %/main.go,%,$(wildcard functions/*/main.go)))
# Local-development database for `make run` and `make admin`.
DEV_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/tempwatch?sslmode=disable
GOLANGCI_VERSION := v2.15.0
GOLANGCI  := $(shell $(GO) env GOPATH)/bin/golangci-lint-$(GOLANGCI_VERSION)
# The admin console's node modules, pinned in its package-lock.json: its type
# checker (tsc) and the browser test's driver (playwright-core). npm ci
# writes this file last.
CONSOLE_NODE_MODULES := shared/console/node_modules/.package-lock.json

.PHONY: help build test test-unit lint bench run migrate images up down admin simulate clean tools compose-env keys

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

build: ## build every function's static bootstrap into .bin/functions/<name>/ and the bridge
	@for f in $(FUNCTIONS); do \
		echo "build functions/$$f"; \
		CGO_ENABLED=0 $(GO) build -trimpath -ldflags='-s -w' -o $(BIN)/functions/$$f/bootstrap ./functions/$$f || exit 1; \
	done
	@if [ -d bridge ]; then echo "build bridge"; CGO_ENABLED=0 $(GO) build -trimpath -ldflags='-s -w' -o $(BIN)/bridge ./bridge; fi

test: $(CONSOLE_NODE_MODULES) ## run every test with the race detector against the real services (starts FerretDB if needed)
	@infra/scripts/test.sh

test-unit: ## the fast tier: every test that needs no service (go test -short), both modules and the console script
	@infra/scripts/test.sh unit

bench: ## benchmarks with same-run references (BENCH=readpaths|ingest|e2e|deadletters|deviceauth|tokencheck|metrics|alarms|export|silence; default all)
	@infra/scripts/bench.sh

lint: tools ## gofmt, go vet and golangci-lint on both modules; tsc on the admin console's modules
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
		if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	cd infra && $(GO) vet ./...
	$(GOLANGCI) run --allow-parallel-runners ./...
	cd infra && $(GOLANGCI) run --allow-parallel-runners ./...
	cd shared/console && node_modules/.bin/tsc --noEmit -p .

tools: $(GOLANGCI) $(CONSOLE_NODE_MODULES)
$(GOLANGCI):
	@echo "installing golangci-lint $(GOLANGCI_VERSION) (first time only, takes a few minutes)"
	@tmp=$$(mktemp -d) && GOBIN=$$tmp $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_VERSION) \
		&& mkdir -p $(dir $(GOLANGCI)) && mv $$tmp/golangci-lint $(GOLANGCI) && rm -rf $$tmp
$(CONSOLE_NODE_MODULES): shared/console/package-lock.json
	@command -v npm >/dev/null || { echo "npm not found: the admin console's type check and browser test need Node.js 20+ with npm"; exit 1; }
	@echo "installing TypeScript and playwright-core for the admin console (npm ci in shared/console; again when its package-lock.json changes)"
	cd shared/console && npm ci --no-audit --no-fund
	@touch $@

run: ## migrate, then start the whole system locally without Docker (devstack) and print its URLs
	@echo "devstack: a fresh token key for this run unless JWT_SIGNING_KEYS is set (make keys prints one)"
	@cd infra && DATABASE_URL="$${DATABASE_URL:-$(DEV_DATABASE_URL)}" $(GO) run ./devstack -root ..

migrate: ## bring DATABASE_URL (default make run's database) to this build's schema: functions/migrate as a plain command
	@DATABASE_URL="$${DATABASE_URL:-$(DEV_DATABASE_URL)}" $(GO) run ./functions/migrate

admin: ## create the first admin: make admin EMAIL=you@example.com (asks for the password)
	@[ -n "$(EMAIL)" ] || { echo "usage: make admin EMAIL=you@example.com"; exit 2; }
	cd infra && DATABASE_URL="$${DATABASE_URL:-$(DEV_DATABASE_URL)}" $(GO) run ./cmd/admin -email "$(EMAIL)"

simulate: ## publish simulated readings for 2 client companies to make run's stack (ADMIN_EMAIL, ADMIN_PASSWORD)
	@[ -n "$$ADMIN_EMAIL" ] && [ -n "$$ADMIN_PASSWORD" ] || { echo "usage: ADMIN_EMAIL=... ADMIN_PASSWORD=... make simulate  (an admin made with make admin)"; exit 2; }
	cd infra && $(GO) run ./simulator -api "$${API_URL:-http://127.0.0.1:3000}" -broker "$${MQTT_URL:-tcp://127.0.0.1:1884}" \
		-clients 2 -sensors 5 -rate $${RATE:-20} -duration $${DURATION:-1m}

images: ## build container images for every function, the bridge and the simulator
	@for f in $(FUNCTIONS); do \
		docker build -f infra/docker/function.Dockerfile --build-arg FUNCTION=$$f -t tempwatch/$$f:dev . || exit 1; \
	done
	docker build -f infra/docker/bridge.Dockerfile -t tempwatch/bridge:dev .
	docker build -f infra/docker/simulator.Dockerfile -t tempwatch/simulator:dev .
	docker build -f infra/docker/gateway.Dockerfile -t tempwatch/gateway:dev .

keys: ## print a fresh Ed25519 token key as JWT_SIGNING_KEYS (auth only) and JWT_PUBLIC_KEYS (KID=... names it)
	@cd infra && $(GO) run ./cmd/jwtkeys $(if $(KID),-kid "$(KID)")

compose-env: ## write the secrets docker compose requires into .env (keeps those already there)
	@infra/scripts/compose-env.sh

up: compose-env ## start the containerised stack (docker compose)
	docker compose up -d --build

down: ## stop the containerised stack and drop its volumes
	docker compose down -v

clean: ## remove build output
	rm -rf $(BIN)
