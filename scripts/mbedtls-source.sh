#!/usr/bin/env bash
# Fetches Debian's mbed TLS source package, of the version of the installed
# libmbedtls-dev, into DIR and unpacks it with Debian's patches applied; prints
# the source tree's path. Used by the Cortex-M builds that link mbed TLS (the
# footprint benchmark, the emulated board's firmware).
#
# Usage: scripts/mbedtls-source.sh DIR
#   The first run downloads the source package with apt-get, through deb-src
#   lists of its own (the system's apt configuration is left alone) and checks
#   it against its .dsc; later runs reuse it and need no network.
# Exits non-zero with a message on stderr when anything fails.
set -euo pipefail

[ $# -eq 1 ] || {
    echo "usage: scripts/mbedtls-source.sh DIR" >&2
    exit 2
}

die() {
    echo "error: $*" >&2
    exit 1
}

# Runs a command with its output in a log; on failure shows the log's end.
logged() {
    local log=$1
    shift
    if ! "$@" >"$log" 2>&1; then
        tail -n 20 "$log" >&2
        die "'$*' failed; see $log"
    fi
}

for tool in dpkg-query apt-get tar sha256sum awk sed; do
    command -v "$tool" >/dev/null || die "$tool not found (run scripts/deps.sh)"
done
mkdir -p "$1"
srcdir=$(cd "$1" && pwd)

mbedtls_version=$(dpkg-query -W -f='${Version}' libmbedtls-dev 2>/dev/null) ||
    die "libmbedtls-dev is not installed (run scripts/deps.sh)"
mbedtls_file_version=${mbedtls_version#*:}
mbedtls_upstream=${mbedtls_file_version%-*}
mbedtls_upstream=${mbedtls_upstream%%[+~]*}

tree="$srcdir/mbedtls-$mbedtls_file_version"
dsc="$srcdir/mbedtls_$mbedtls_file_version.dsc"

# Files of the source package with their SHA-256, from the .dsc.
dsc_files() {
    awk '/^Checksums-Sha256:/ { on = 1; next } /^[^ ]/ { on = 0 } on && NF == 3 { print $1, $3 }' "$dsc"
}

# True when the .dsc and every file it lists are here and intact.
package_ok() {
    [ -f "$dsc" ] && [ -n "$(dsc_files)" ] &&
        (cd "$srcdir" && dsc_files | sed 's/ /  /' | sha256sum --quiet -c - >/dev/null 2>&1)
}

download_source() {
    local apt="$srcdir/apt" codename
    # shellcheck source=/dev/null
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
    [ -n "$codename" ] || die "cannot tell the Debian release from /etc/os-release"
    mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial"
    cat >"$apt/src.sources" <<EOF
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: $codename $codename-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://deb.debian.org/debian-security
Suites: $codename-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    local opts=(-o "Dir::Etc::SourceList=$apt/src.sources" -o Dir::Etc::SourceParts=/nonexistent
        -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache")
    logged "$srcdir/apt-update.log" apt-get "${opts[@]}" update
    compgen -G "$apt/lists/*_dists_${codename}_main_source_Sources*" >/dev/null || {
        grep -E '^(E|W|Err):' "$srcdir/apt-update.log" | head -n 5 >&2
        die "could not fetch Debian's deb-src index for $codename; see $srcdir/apt-update.log"
    }
    (cd "$srcdir" && logged "$srcdir/apt-source.log" \
        apt-get "${opts[@]}" source --download-only "mbedtls=$mbedtls_version") ||
        die "downloading Debian's mbedtls $mbedtls_version source package failed"
    rm -rf "$apt"
}

if [ ! -f "$tree/.unpacked" ]; then
    mkdir -p "$srcdir"
    package_ok || download_source
    package_ok || die "the mbedtls source package in $srcdir does not match its .dsc"
    orig=$(dsc_files | awk '$2 ~ /\.orig\.tar\./ { print $2 }')
    debian=$(dsc_files | awk '$2 ~ /\.debian\.tar\./ { print $2 }')
    if [ -z "$orig" ] || [ -z "$debian" ]; then
        die "$dsc is not a 3.0 (quilt) source package"
    fi
    rm -rf "$tree" "$tree.tmp"
    mkdir -p "$tree.tmp"
    tar -xf "$srcdir/$orig" -C "$tree.tmp" --strip-components=1 || die "cannot unpack $orig"
    tar -xf "$srcdir/$debian" -C "$tree.tmp" || die "cannot unpack $debian"
    if [ -f "$tree.tmp/debian/patches/series" ]; then
        command -v patch >/dev/null || die "patch not found (run scripts/deps.sh)"
        while read -r p _; do
            case "$p" in '' | '#'*) continue ;; esac
            patch -d "$tree.tmp" -p1 -s <"$tree.tmp/debian/patches/$p" ||
                die "Debian patch $p does not apply"
        done <"$tree.tmp/debian/patches/series"
    fi
    touch "$tree.tmp/.unpacked"
    mv "$tree.tmp" "$tree"
fi
version_of() { sed -n 's/^#define MBEDTLS_VERSION_STRING *"\(.*\)"/\1/p' "$1"; }
src_version=$(version_of "$tree/include/mbedtls/version.h")
host_version=$(version_of /usr/include/mbedtls/version.h)
if [ "$src_version" != "$host_version" ] || [ "$src_version" != "$mbedtls_upstream" ]; then
    die "mbed TLS source $src_version does not match the installed headers $host_version"
fi
echo "$tree"
