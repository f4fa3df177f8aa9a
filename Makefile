# The sample's commands. `make run` and `make test` are the two that matter.
GO       ?= go
BIN      ?= bin/passwordless
ARGS     ?=

.PHONY: run emulator build test unit sdk-deps e2e lint bench clean

## run: start the app on http://localhost:3000 (with the local Authsignal emulator when no key is set)
run:
	$(GO) run .

## emulator: start only the Authsignal emulator on http://127.0.0.1:4000
emulator:
	$(GO) run . emulator

## build: compile the single binary into bin/
build:
	$(GO) build -o $(BIN) .

## test: lint, unit and integration tests with the race detector, then the browser suite
test: lint unit e2e

# unit runs beside a throwaway PostgreSQL (store/pgtest.sh), so the store's tests cover both databases.
unit: sdk-deps
	bash store/pgtest.sh $(GO) test -race -count=1 ./app/... ./auth/... ./store/... ./emulator/... ./e2e/loadgen/... ./internal/... .
	$(GO) test -count=1 -run 'TestAnonymousTrafficKeepsMemoryFlat' -v .

## sdk-deps: the official Authsignal Node SDK that the emulator's tests run (npm ci, pinned by its lock file)
NODE_SDK := emulator/testdata/node
sdk-deps: $(NODE_SDK)/node_modules/.package-lock.json
$(NODE_SDK)/node_modules/.package-lock.json: $(NODE_SDK)/package.json $(NODE_SDK)/package-lock.json
	@if command -v npm >/dev/null 2>&1; then npm ci --prefix $(NODE_SDK) --no-audit --no-fund --loglevel=error; \
	else echo "npm not found: the official Node SDK test will be skipped (a failure with CI=true)"; fi

## e2e: the Playwright suite in Chromium (installs Chromium and the driver when missing); ARGS='-run TestSignInByEmail' for one
e2e:
	bash e2e/run.sh $(ARGS)

## lint: gofmt check and go vet
lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt would change: $$unformatted"; exit 1; fi
	$(GO) vet ./...

## bench: Go benchmarks, then the loopback load generator, the app also on a throwaway PostgreSQL (figures only, never a pass/fail gate)
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./auth/... ./store/... ./emulator/... ./app/...
	bash store/pgtest.sh sh -c '$(GO) run ./e2e/loadgen $${TEST_DATABASE_URL:+-postgres "$$TEST_DATABASE_URL"}'

## clean: remove build output, local data and caches
clean:
	rm -rf bin data e2e/artifacts .cache $(NODE_SDK)/node_modules
