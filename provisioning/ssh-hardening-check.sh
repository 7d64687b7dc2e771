#!/usr/bin/env bash
# Checks the SSH server settings the pane-agent hosting checklist asks for and prints
# pass/fail for each; exits 1 if any fails, 2 if nothing could be read.
#
#   provisioning/ssh-hardening-check.sh [SSHD_CONFIG]      (default /etc/ssh/sshd_config)
#
# With root and sshd installed it reads the effective settings from `sshd -T` (which applies
# Include files, first-value-wins and the built-in defaults). Otherwise it reads the config
# file and its Include files itself, taking the first value of each keyword as sshd does,
# outside any Match block, and falls back to OpenSSH's defaults for keywords not set.
set -euo pipefail

CONFIG=${1:-/etc/ssh/sshd_config}
declare -A value=()
source_desc=""

lower() { tr '[:upper:]' '[:lower:]'; }

from_sshd_t() {
    local sshd out
    sshd=$(command -v sshd || true)
    [[ -z $sshd && -x /usr/sbin/sshd ]] && sshd=/usr/sbin/sshd
    [[ -n $sshd && $EUID -eq 0 ]] || return 1
    out=$("$sshd" -T -f "$CONFIG" 2>/dev/null) || return 1
    local key rest
    while read -r key rest; do
        [[ -n $key ]] && value[$key]=$(printf '%s' "$rest" | lower)
    done <<<"$out"
    source_desc="sshd -T -f $CONFIG"
}

# Reads FILE; the first value of a keyword wins; Match blocks are skipped.
read_config() {
    local file=$1 line key rest pattern f
    [[ -r $file ]] || return 0
    local in_match=0
    while IFS= read -r line || [[ -n $line ]]; do
        line=${line%%#*}
        line=${line//=/ }
        read -r key rest <<<"$line" || true
        [[ -z ${key:-} ]] && continue
        key=$(printf '%s' "$key" | lower)
        if [[ $key == match ]]; then
            in_match=1
            continue
        fi
        [[ $in_match -eq 1 ]] && continue
        if [[ $key == include ]]; then
            for pattern in $rest; do
                [[ $pattern == /* ]] || pattern=/etc/ssh/$pattern
                for f in $pattern; do
                    [[ -f $f ]] && read_config "$f"
                done
            done
            continue
        fi
        [[ -v "value[$key]" ]] || value[$key]=$(printf '%s' "${rest%% *}" | lower)
    done <"$file"
}

from_files() {
    [[ -r $CONFIG ]] || return 1
    read_config "$CONFIG"
    # OpenSSH's defaults for what the files leave unset.
    [[ -v "value[passwordauthentication]" ]] || value[passwordauthentication]=yes
    # ChallengeResponseAuthentication is the deprecated alias of KbdInteractiveAuthentication.
    if [[ ! -v "value[kbdinteractiveauthentication]" ]]; then
        value[kbdinteractiveauthentication]=${value[challengeresponseauthentication]:-yes}
    fi
    [[ -v "value[permitrootlogin]" ]] || value[permitrootlogin]=prohibit-password
    [[ -v "value[pubkeyauthentication]" ]] || value[pubkeyauthentication]=yes
    [[ -v "value[x11forwarding]" ]] || value[x11forwarding]=no
    source_desc="$CONFIG and its Include files (run as root with sshd installed for sshd -T)"
}

if ! from_sshd_t && ! from_files; then
    echo "cannot read the SSH server settings: no usable sshd -T and $CONFIG is not readable" >&2
    exit 2
fi

failed=0
check() { # check KEYWORD DISPLAY ALLOWED...
    local key=$1 name=$2
    shift 2
    local got=${value[$key]:-unset} ok
    for ok in "$@"; do
        if [[ $got == "$ok" ]]; then
            printf 'pass  %-30s %s\n' "$name" "$got"
            return
        fi
    done
    printf 'FAIL  %-30s %s (want: %s)\n' "$name" "$got" "$*"
    failed=1
}

echo "reading: $source_desc"
check passwordauthentication PasswordAuthentication no
check kbdinteractiveauthentication KbdInteractiveAuthentication no
# sshd -T prints prohibit-password as without-password on older OpenSSH.
check permitrootlogin PermitRootLogin no prohibit-password without-password
check pubkeyauthentication PubkeyAuthentication yes
check x11forwarding X11Forwarding no

if [[ $failed -ne 0 ]]; then
    echo "fix: set the values above in /etc/ssh/sshd_config.d/10-pane.conf (read first when"
    echo "     sshd_config includes sshd_config.d, since the first value wins), then"
    echo "     sshd -t && systemctl reload ssh"
    exit 1
fi
echo "all SSH checks passed"
