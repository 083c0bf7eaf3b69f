#!/usr/bin/env bash
# Installs the Debian packages otter needs that are missing. Idempotent; prints
# nothing when everything is already there.
set -euo pipefail

packages=(
    build-essential cmake pkg-config clang clang-format
    libcmocka-dev libmbedtls-dev zlib1g-dev openssl libclang-rt-dev
    gcc-arm-none-eabi libnewlib-arm-none-eabi binutils-arm-none-eabi
    mosquitto mosquitto-clients libmosquitto-dev mosquitto-dev libjsmn-dev libcjson-dev libcbor-dev
    libsqlite3-dev sqlite3 valgrind qemu-system-arm
    libmicrohttpd-dev libcurl4-openssl-dev
    postgresql-15 libpq-dev
    chromium chromium-driver python3-selenium
)

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing missing packages: ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "error: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
    sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
