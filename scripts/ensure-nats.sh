#!/usr/bin/env bash
# ensure-nats.sh — make sure a nats-server >= MIN_VERSION is available and
# print its absolute path as the only line on stdout (diagnostics go to stderr).
#
# Usage:  NATS_SERVER_BIN=$(scripts/ensure-nats.sh)
#
# Search order:
#   1. $NATS_SERVER_BIN if set (fails if it is missing or too old)
#   2. <repo>/.tools/bin/nats-server
#   3. nats-server on PATH
#   4. otherwise install Debian trixie's nats-server package (a static Go
#      binary) into <repo>/.tools/bin, using a private apt configuration under
#      <repo>/.tools/apt that leaves the system's apt sources and state alone.
set -euo pipefail

MIN_VERSION="2.10.23"
SUITE="trixie"
DEFAULT_MIRROR="http://deb.debian.org/debian"
KEYRING="/usr/share/keyrings/debian-archive-keyring.gpg"

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS_DIR="$REPO_ROOT/.tools"
TOOLS_BIN="$TOOLS_DIR/bin"
LOCAL_BIN="$TOOLS_BIN/nats-server"
APT_DIR="$TOOLS_DIR/apt"

log() { printf 'ensure-nats: %s\n' "$*" >&2; }
die() { printf 'ensure-nats: error: %s\n' "$*" >&2; exit 1; }

# Print "X.Y.Z" for the given nats-server binary, or nothing if it can't be
# determined. Output looks like "nats-server: v2.10.24".
nats_version() {
    local out
    out="$("$1" --version 2>&1)" || return 0
    if [[ $out =~ v?([0-9]+)\.([0-9]+)\.([0-9]+) ]]; then
        printf '%s.%s.%s\n' "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}" "${BASH_REMATCH[3]}"
    fi
}

# version_ge A B: true if dotted version A >= B (numeric, major.minor.patch).
version_ge() {
    local -a a b
    local i
    IFS=. read -r -a a <<<"$1"
    IFS=. read -r -a b <<<"$2"
    for i in 0 1 2; do
        local x=$((10#${a[i]:-0})) y=$((10#${b[i]:-0}))
        if ((x > y)); then return 0; fi
        if ((x < y)); then return 1; fi
    done
    return 0
}

# Absolute path of a file (resolves a relative path against $PWD).
abs_path() {
    local dir
    dir="$(cd "$(dirname "$1")" && pwd)"
    printf '%s/%s\n' "$dir" "$(basename "$1")"
}

# check_candidate PATH LABEL: on success prints the absolute path and returns 0;
# otherwise sets CANDIDATE_VERSION ("" if unknown) and returns 1.
CANDIDATE_VERSION=""
check_candidate() {
    local bin="$1" label="$2" ver
    CANDIDATE_VERSION=""
    [[ -f $bin && -x $bin ]] || return 1
    ver="$(nats_version "$bin")"
    CANDIDATE_VERSION="$ver"
    if [[ -n $ver ]] && version_ge "$ver" "$MIN_VERSION"; then
        log "using $label: $bin (v$ver)"
        abs_path "$bin"
        return 0
    fi
    return 1
}

# 1. Explicit override.
if [[ -n ${NATS_SERVER_BIN:-} ]]; then
    if check_candidate "$NATS_SERVER_BIN" "NATS_SERVER_BIN"; then
        exit 0
    fi
    if [[ ! -e $NATS_SERVER_BIN ]]; then
        die "NATS_SERVER_BIN=$NATS_SERVER_BIN does not exist (need nats-server >= $MIN_VERSION); unset it to let this script find or install one"
    elif [[ ! -x $NATS_SERVER_BIN || -d $NATS_SERVER_BIN ]]; then
        die "NATS_SERVER_BIN=$NATS_SERVER_BIN is not an executable file (need nats-server >= $MIN_VERSION); unset it to let this script find or install one"
    elif [[ -z $CANDIDATE_VERSION ]]; then
        die "NATS_SERVER_BIN=$NATS_SERVER_BIN: could not determine its version from '--version' (need nats-server >= $MIN_VERSION); unset it to let this script find or install one"
    else
        die "NATS_SERVER_BIN=$NATS_SERVER_BIN is version $CANDIDATE_VERSION, but nats-server >= $MIN_VERSION is needed; unset it to let this script find or install one"
    fi
fi

# 2. Repo-local install.
if check_candidate "$LOCAL_BIN" "repo-local nats-server"; then
    exit 0
elif [[ -e $LOCAL_BIN ]]; then
    log "ignoring $LOCAL_BIN (version ${CANDIDATE_VERSION:-unknown} < $MIN_VERSION); will reinstall"
fi

# 3. PATH.
if path_bin="$(command -v nats-server 2>/dev/null)" && [[ -n $path_bin ]]; then
    if check_candidate "$path_bin" "nats-server from PATH"; then
        exit 0
    fi
    log "skipping $path_bin on PATH: version ${CANDIDATE_VERSION:-unknown} < $MIN_VERSION"
fi

# 4. Install Debian $SUITE's nats-server into .tools/ with a private apt setup.
missing=()
for tool in apt-get dpkg; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if ((${#missing[@]})); then
    die "no nats-server >= $MIN_VERSION found and cannot install one: '${missing[*]}' not available. Install nats-server >= $MIN_VERSION and set NATS_SERVER_BIN to its path, or run this on a Debian-based system with apt-get and dpkg (package nats-server from Debian $SUITE)."
fi
if [[ ! -r $KEYRING ]]; then
    die "no nats-server >= $MIN_VERSION found and cannot install one: $KEYRING is missing. Install nats-server >= $MIN_VERSION and set NATS_SERVER_BIN to its path, or install the 'debian-archive-keyring' package."
fi

# Archive URI: first URIs: line of the deb822 sources, else the first "deb"
# line of the one-line sources.list, else the default mirror. Only URIs that
# serve the main Debian archive are useful (not debian-security etc.).
mirror=""
if [[ -r /etc/apt/sources.list.d/debian.sources ]]; then
    mirror="$(awk 'tolower($1) == "uris:" { print $2; exit }' /etc/apt/sources.list.d/debian.sources)"
fi
if [[ -z $mirror && -r /etc/apt/sources.list ]]; then
    # deb [opts] URI suite components...
    mirror="$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) { if ($i ~ /^\[/) { while ($i !~ /\]$/ && i < NF) i++; continue } print $i; exit } }' /etc/apt/sources.list)"
fi
mirror="${mirror:-$DEFAULT_MIRROR}"
mirror="${mirror%/}"

mkdir -p "$TOOLS_BIN" "$APT_DIR/lists/partial" "$APT_DIR/cache/archives/partial" "$APT_DIR/download"

# Serialise concurrent installs (e.g. test.sh and up.sh started together).
if command -v flock >/dev/null 2>&1; then
    exec 9>"$APT_DIR/install.lock"
    flock 9
    # Someone else may have finished the install while we waited.
    if check_candidate "$LOCAL_BIN" "repo-local nats-server"; then
        exit 0
    fi
fi

sources_list="$APT_DIR/sources.list"
printf 'deb [signed-by=%s] %s %s main\n' "$KEYRING" "$mirror" "$SUITE" >"$sources_list"

# apt drops privileges to the _apt user for downloads when run as root; let it
# write into our private dirs so it doesn't warn about an unsandboxed download.
if ((EUID == 0)) && getent passwd _apt >/dev/null 2>&1; then
    chown _apt "$APT_DIR/lists/partial" "$APT_DIR/cache/archives/partial" "$APT_DIR/download" 2>/dev/null || true
fi

apt_opts=(
    -qq
    -o "Dir::Etc::SourceList=$sources_list"
    -o "Dir::Etc::SourceParts=/dev/null"
    -o "Dir::State::Lists=$APT_DIR/lists"
    -o "Dir::Cache=$APT_DIR/cache"
)

start=$SECONDS
log "no suitable nats-server found; installing Debian $SUITE's nats-server from $mirror into $TOOLS_BIN"
# Only the Packages index is needed: skip AppStream (DEP-11) metadata and
# translations that the system's apt.conf.d may otherwise pull in (~8 MB).
apt-get "${apt_opts[@]}" \
    -o Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false \
    -o Acquire::Languages=none \
    update >&2 ||
    die "apt-get update for $SUITE from $mirror failed (see above). Install nats-server >= $MIN_VERSION and set NATS_SERVER_BIN, or fix network access to $mirror."

rm -f "$APT_DIR/download/"nats-server_*.deb
(cd "$APT_DIR/download" && apt-get "${apt_opts[@]}" download nats-server >&2) ||
    die "apt-get download nats-server from $SUITE failed (see above). Install nats-server >= $MIN_VERSION and set NATS_SERVER_BIN."

debs=("$APT_DIR/download/"nats-server_*.deb)
[[ -f ${debs[0]} ]] || die "apt-get download produced no nats-server .deb in $APT_DIR/download"

extract_dir="$(mktemp -d "$TOOLS_DIR/nats-extract.XXXXXX")"
trap 'rm -rf "$extract_dir"' EXIT
dpkg -x "${debs[0]}" "$extract_dir" >&2
[[ -f $extract_dir/usr/sbin/nats-server ]] ||
    die "${debs[0]} does not contain usr/sbin/nats-server"

# Install atomically so a concurrent reader never sees a half-written file.
install -m 0755 "$extract_dir/usr/sbin/nats-server" "$LOCAL_BIN.tmp.$$"
mv -f "$LOCAL_BIN.tmp.$$" "$LOCAL_BIN"

if check_candidate "$LOCAL_BIN" "freshly installed nats-server"; then
    log "installed $(basename "${debs[0]}") in $((SECONDS - start))s"
    exit 0
fi
die "installed $LOCAL_BIN reports version ${CANDIDATE_VERSION:-unknown}, but >= $MIN_VERSION is needed. Install nats-server >= $MIN_VERSION and set NATS_SERVER_BIN."
