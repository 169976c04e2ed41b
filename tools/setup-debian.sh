#!/usr/bin/env bash
# Installs everything concur needs to build, test, benchmark and lint on Debian 12 (bookworm).
#
# Idempotent: if every package is already installed it does nothing (no network, no root
# needed), so the README's commands can run it every time. Otherwise it runs `apt-get update`
# (skipped when the package lists are less than an hour old) and installs what is missing.
# Run as root, or as a user with sudo.
set -euo pipefail

packages=(
  # toolchain and build
  build-essential g++ cmake ninja-build ccache git pkg-config
  # tests (GoogleTest, GoogleMock)
  libgtest-dev libgmock-dev
  # benchmarks and their peers (bench/): Google Benchmark, TBB, Boost (Asio); python3 runs bench/compare
  libbenchmark-dev libtbb-dev libboost-dev python3
  # bench/compare/asyncio_bench.py: Python asyncio with uvloop as well
  python3-uvloop
  # tools/concur: command line (CLI11), trace export (nlohmann-json); tests/tool renders the
  # tour's HTML report in headless Chromium
  libcli11-dev nlohmann-json3-dev chromium
  # asyncio: the io_uring backend (the epoll backend needs nothing)
  liburing-dev
  # asyncio TLS (OpenSSL 3); the openssl command line is a peer in the TLS tests
  libssl-dev openssl
  # asyncio: asynchronous DNS (loop.getaddrinfo / getnameinfo)
  libc-ares-dev
  # http: gzip/deflate bodies (zlib); peers in the HTTP tests: curl, Python requests and aiohttp, nginx
  zlib1g-dev curl python3-requests python3-aiohttp nginx-light
  # bench/http: wrk drives the web servers (concur, nginx, aiohttp)
  wrk
  # fuzzing of the HTTP parser (tools/fuzz-http.sh: clang with libFuzzer)
  clang libclang-rt-14-dev
  # multiprocessing: cereal serialises arguments and results for worker processes
  libcereal-dev
  # lint: .clang-format, .clang-tidy
  clang-format clang-tidy
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup-debian: all ${#packages[@]} packages already installed"
  exit 0
fi

echo "setup-debian: installing ${missing[*]}"
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    sudo=(sudo)
  else
    echo "setup-debian: need root (or sudo) to install: ${missing[*]}" >&2
    exit 1
  fi
fi

export DEBIAN_FRONTEND=noninteractive
# Refresh the package lists unless our own update succeeded within the last hour and the lists
# are still there (apt keeps the server's timestamps on list files, so we keep a stamp of our own).
stamp=/var/lib/apt/concur-update.stamp
if [ -z "$(find "$stamp" -mmin -60 2>/dev/null)" ] ||
   [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' -print -quit 2>/dev/null)" ]; then
  "${sudo[@]}" apt-get update
  "${sudo[@]}" touch "$stamp"
fi
"${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
echo "setup-debian: done"
