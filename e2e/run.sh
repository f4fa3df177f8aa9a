#!/usr/bin/env bash
# Runs the browser suite: `bash e2e/run.sh [go test flags]` from the repository root
# (`make e2e ARGS='-run TestSignInByEmail'` calls it). It prepares what the suite needs,
# offline-friendly, and never lets Playwright download anything by default:
#
#   Chromium  Debian's chromium at /usr/bin/chromium, installed with apt-get when missing
#             and possible (root + apt). Override with CHROMIUM_PATH=/path/to/chromium.
#   Driver    playwright-core@1.52.0 (matching playwright-go v0.5200.1) fetched with
#             `npm pack` into .cache/playwright/ (git-ignored), run with the system node.
#             Override with PLAYWRIGHT_DRIVER_PATH=DIR (DIR/package/cli.js) and
#             PLAYWRIGHT_NODEJS_PATH=/path/to/node.
#
#   PLAYWRIGHT_BROWSERS=download  with internet: let Playwright download its own driver and
#             Chromium (playwright.Install) instead of the two above.
#   HEADED=1  show the browser, slowed down (SLOWMO=250 ms per action by default), for a
#             workshop or to watch a failing test.
#   CI=true   a missing browser or driver fails the suite instead of skipping it.
#
# Failed tests leave a screenshot and the page's HTML in e2e/artifacts/<TestName>/, and the
# server's log in e2e/artifacts/server.log.
set -euo pipefail

cd "$(dirname "$0")/.."
root=$PWD

playwright_version=1.52.0
axe_version=4.10.2 # the accessibility checker (MPL-2.0), injected by the suite, never shipped
export CHROMIUM_PATH="${CHROMIUM_PATH:-/usr/bin/chromium}"

say() { printf 'e2e: %s\n' "$*" >&2; }

if [[ "${PLAYWRIGHT_BROWSERS:-}" == "download" ]]; then
  say "PLAYWRIGHT_BROWSERS=download: Playwright downloads its own driver and Chromium (needs internet)"
else
  # Chromium: Debian's package when missing and we may install it.
  if [[ ! -x "$CHROMIUM_PATH" ]]; then
    if [[ "$CHROMIUM_PATH" == /usr/bin/chromium && "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
      say "installing Debian's chromium (apt-get)…"
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq >&2 && apt-get install -y -qq chromium >&2 || say "apt-get could not install chromium"
    fi
  fi

  # Driver: playwright-core from npm, unpacked so that DIR/package/cli.js exists.
  if [[ -z "${PLAYWRIGHT_DRIVER_PATH:-}" ]]; then
    export PLAYWRIGHT_DRIVER_PATH="$root/.cache/playwright"
    if [[ ! -f "$PLAYWRIGHT_DRIVER_PATH/package/cli.js" ]] && command -v npm >/dev/null 2>&1; then
      say "fetching playwright-core@$playwright_version from npm into .cache/playwright/…"
      mkdir -p "$PLAYWRIGHT_DRIVER_PATH"
      tmp=$(mktemp -d)
      if (cd "$tmp" && npm pack --silent "playwright-core@$playwright_version" >/dev/null) &&
        tar -xzf "$tmp/playwright-core-$playwright_version.tgz" -C "$tmp"; then
        rm -rf "$PLAYWRIGHT_DRIVER_PATH/package"
        mv "$tmp/package" "$PLAYWRIGHT_DRIVER_PATH/package"
      else
        say "npm could not fetch playwright-core@$playwright_version"
      fi
      rm -rf "$tmp"
    fi
  fi
  # axe-core, the accessibility checker the suite injects into every page.
  if [[ -z "${AXE_CORE_PATH:-}" ]]; then
    export AXE_CORE_PATH="$root/.cache/axe-core/axe.min.js"
    if [[ ! -f "$AXE_CORE_PATH" ]] && command -v npm >/dev/null 2>&1; then
      say "fetching axe-core@$axe_version from npm into .cache/axe-core/…"
      mkdir -p "$(dirname "$AXE_CORE_PATH")"
      tmp=$(mktemp -d)
      if (cd "$tmp" && npm pack --silent "axe-core@$axe_version" >/dev/null) &&
        tar -xzf "$tmp/axe-core-$axe_version.tgz" -C "$tmp"; then
        mv "$tmp/package/axe.min.js" "$AXE_CORE_PATH"
      else
        say "npm could not fetch axe-core@$axe_version"
      fi
      rm -rf "$tmp"
    fi
  fi
  if [[ -z "${PLAYWRIGHT_NODEJS_PATH:-}" && ! -x "$PLAYWRIGHT_DRIVER_PATH/node" ]] && command -v node >/dev/null 2>&1; then
    export PLAYWRIGHT_NODEJS_PATH="$(command -v node)"
  fi

  missing=()
  [[ -x "$CHROMIUM_PATH" ]] || missing+=("Chromium (apt-get install -y chromium, or set CHROMIUM_PATH)")
  [[ -f "$AXE_CORE_PATH" ]] || missing+=("axe-core (install npm so this script can fetch axe-core@$axe_version, or set AXE_CORE_PATH)")
  [[ -f "$PLAYWRIGHT_DRIVER_PATH/package/cli.js" ]] || missing+=("the Playwright driver (install Node.js and npm so this script can fetch playwright-core@$playwright_version, or set PLAYWRIGHT_DRIVER_PATH)")
  [[ -n "${PLAYWRIGHT_NODEJS_PATH:-}" || -x "$PLAYWRIGHT_DRIVER_PATH/node" ]] || missing+=("Node.js (apt-get install -y nodejs, or set PLAYWRIGHT_NODEJS_PATH)")
  if ((${#missing[@]})); then
    joined=$(printf '%s and ' "${missing[@]}")
    say "cannot run the browser suite: install ${joined% and } (or set PLAYWRIGHT_BROWSERS=download with internet access)."
    exit 1
  fi
fi

start=$(date +%s)
status=0
go test -count=1 -timeout 8m ./e2e/ "$@" || status=$?
say "suite wall time: $(($(date +%s) - start))s"
if ((status != 0)) && [[ -d e2e/artifacts ]]; then
  say "failure screenshots, page HTML and the server log: $root/e2e/artifacts/"
fi
exit "$status"
