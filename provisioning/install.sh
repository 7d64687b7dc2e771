#!/usr/bin/env bash
# Installs pane-agent (and, with --with-signal, the pane-signal gateway) on Debian/Ubuntu
# under systemd. Run as root from a checkout:
#
#   sudo provisioning/install.sh [--with-signal] [--unsealed] [--recovery] [--prefix /usr/local] [--dry-run]
#
# Idempotent: it never overwrites an existing secret, credential, key file or pane.toml;
# running it again rebuilds, reinstalls the binaries and units, and tightens modes.
#
# What it does:
#   1. cargo build --release --locked (root crate; signal/ too with --with-signal)
#   2. installs pane-agent (and pane-signal) to PREFIX/bin, the README to
#      PREFIX/share/doc/pane-agent, systemd/*.service to /etc/systemd/system
#   3. a sealed installation (the default), if /var/lib/pane/pane.toml is absent:
#      `pane-agent init --data-dir /var/lib/pane` asks for the unseal passphrase (Enter, or
#      no terminal, generates one and prints it once) and makes the sealed store, which holds
#      a new command secret and the Signal store's passphrase; then a commented template for
#      the provider keys, /var/lib/pane/credentials/provider-keys (0600), which the first
#      unseal takes into the sealed store and removes. Nothing goes to /etc/pane/credentials.
#      With --unsealed (the layout before sealing, in clear): /etc/pane/credentials (0700
#      root) and, only if absent, agent-secret, provider-keys (a commented template),
#      signal-passphrase, previous-secrets (all 0600 root); then `pane-agent init --unsealed`
#      with AGENT_SECRET set to the credential, so init writes no second secret.
#   4. systemctl daemon-reload; systemctl enable pane-agent (nothing is started)
#
# An existing installation keeps its layout: a rerun does not seal one in clear (stop the
# agent and run `pane-agent seal-init`, see docs/sealing.md).
set -euo pipefail

PREFIX=/usr/local
DRY_RUN=0
WITH_SIGNAL=0
NO_BUILD=0
UNSEALED=0
RECOVERY=0
# The paths can be moved for a test run in a scratch directory; the units expect these.
CRED_DIR=${PANE_CRED_DIR:-/etc/pane/credentials}
STATE_DIR=${PANE_STATE_DIR:-/var/lib/pane}
UNIT_DIR=${PANE_UNIT_DIR:-/etc/systemd/system}
SRC_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

usage() {
    cat <<'EOF'
Usage: install.sh [--with-signal] [--unsealed] [--recovery] [--prefix DIR] [--no-build] [--dry-run]

  --with-signal  also build and install the Signal gateway (signal/). presage and
                 libsignal are git dependencies: this needs network access to GitHub,
                 protobuf-compiler (protoc), build-essential, pkg-config and libssl-dev.
  --unsealed     keep the store and the secrets in clear (the layout before sealing, with
                 the secrets in /etc/pane/credentials); pane-agent doctor warns about it
  --recovery     also make a recovery passphrase, printed once, which unseals as the
                 unseal passphrase does (a new sealed installation only)
  --prefix DIR   install binaries to DIR/bin (default /usr/local); the units are
                 rewritten to match when DIR is not /usr/local
  --no-build     install what target/release (and signal/target/release) already hold
  --dry-run      print what would be done, change nothing
EOF
}

while [[ $# -gt 0 ]]; do
    case $1 in
        --dry-run) DRY_RUN=1 ;;
        --with-signal) WITH_SIGNAL=1 ;;
        --no-build) NO_BUILD=1 ;;
        --unsealed) UNSEALED=1 ;;
        --recovery) RECOVERY=1 ;;
        --prefix)
            [[ $# -ge 2 ]] || { echo "--prefix needs a directory" >&2; exit 2; }
            PREFIX=$2
            shift
            ;;
        --prefix=*) PREFIX=${1#--prefix=} ;;
        -h | --help) usage; exit 0 ;;
        *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done
PREFIX=${PREFIX%/}
[[ $PREFIX == /* ]] || { echo "--prefix must be an absolute path" >&2; exit 2; }
BIN_DIR=$PREFIX/bin
DOC_DIR=$PREFIX/share/doc/pane-agent
if [[ $UNSEALED -eq 1 && $RECOVERY -eq 1 ]]; then
    echo "--recovery is for a sealed installation, not with --unsealed" >&2
    exit 2
fi

say() { printf '==> %s\n' "$*"; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Runs a command, or prints it under --dry-run.
run() {
    if [[ $DRY_RUN -eq 1 ]]; then
        printf '[dry-run] %s\n' "$*"
    else
        "$@"
    fi
}

if [[ $DRY_RUN -eq 0 && $EUID -ne 0 ]]; then
    die "run as root (or with --dry-run to see what it would do)"
fi
[[ -f $SRC_DIR/Cargo.toml && -d $SRC_DIR/systemd ]] || die "run from a pane-agent checkout ($SRC_DIR has no Cargo.toml/systemd)"

# ---------------------------------------------------------------- layout
# Sealed unless asked otherwise; an existing installation keeps the layout it has.
SEALED=1
if [[ $UNSEALED -eq 1 ]]; then
    SEALED=0
fi
if [[ -e $STATE_DIR/seal.json ]]; then
    [[ $UNSEALED -eq 0 ]] || die "$STATE_DIR is a sealed installation (seal.json): --unsealed does not apply to it"
elif [[ $SEALED -eq 1 && -e $STATE_DIR/pane.toml ]]; then
    warn "$STATE_DIR holds an installation in clear: kept as it is (the --unsealed layout). To seal it, stop pane-agent and run pane-agent seal-init (docs/sealing.md)"
    SEALED=0
fi

# ---------------------------------------------------------------- build
# Build as the user who ran sudo, so target/ and ~/.cargo are not taken over by root.
BUILD_USER=${SUDO_USER:-root}
find_cargo() {
    local home
    if [[ $BUILD_USER != root ]]; then
        home=$(getent passwd "$BUILD_USER" | cut -d: -f6)
        if [[ -x $home/.cargo/bin/cargo ]]; then
            echo "$home/.cargo/bin/cargo"
            return
        fi
    fi
    command -v cargo || { [[ -x /root/.cargo/bin/cargo ]] && echo /root/.cargo/bin/cargo; } || true
}
CARGO=$(find_cargo)
if [[ -z $CARGO ]]; then
    [[ $DRY_RUN -eq 1 || $NO_BUILD -eq 1 ]] || die "cargo not found (install Rust with rustup as $BUILD_USER first)"
    CARGO=cargo
fi

build() { # build DIR
    local dir=$1
    say "building $dir (cargo build --release --locked as $BUILD_USER)"
    if [[ $BUILD_USER != root ]]; then
        run sudo -u "$BUILD_USER" -H env PATH="$(dirname "$CARGO"):$PATH" \
            "$CARGO" build --release --locked --manifest-path "$dir/Cargo.toml"
    else
        run "$CARGO" build --release --locked --manifest-path "$dir/Cargo.toml"
    fi
}

if [[ $NO_BUILD -eq 0 ]]; then
    build "$SRC_DIR"
fi
if [[ $NO_BUILD -eq 0 && $WITH_SIGNAL -eq 1 ]]; then
    missing=()
    command -v protoc >/dev/null || missing+=(protobuf-compiler)
    command -v pkg-config >/dev/null || missing+=(pkg-config)
    command -v cc >/dev/null || missing+=(build-essential)
    dpkg -s libssl-dev >/dev/null 2>&1 || missing+=(libssl-dev)
    if [[ ${#missing[@]} -gt 0 ]]; then
        say "installing build dependencies of signal/: ${missing[*]}"
        run apt-get install -y "${missing[@]}"
    fi
    say "signal/ fetches presage and libsignal from GitHub: this needs network access"
    build "$SRC_DIR/signal"
fi

# ---------------------------------------------------------------- binaries, docs, units
say "installing binaries to $BIN_DIR"
run install -d -m 0755 "$BIN_DIR" "$DOC_DIR"
run install -m 0755 "$SRC_DIR/target/release/pane-agent" "$BIN_DIR/pane-agent"
if [[ $WITH_SIGNAL -eq 1 ]]; then
    run install -m 0755 "$SRC_DIR/signal/target/release/pane-signal" "$BIN_DIR/pane-signal"
fi
run install -m 0644 "$SRC_DIR/README.md" "$DOC_DIR/README.md"
# The one torrc snippet for the onion service and the outbound proxy (printed steps below).
run install -m 0644 "$SRC_DIR/provisioning/tor-hidden-service.conf" "$DOC_DIR/torrc-pane.conf"

say "installing systemd units to $UNIT_DIR"
# /etc/systemd/system always exists; a PANE_UNIT_DIR for a scratch install may not yet.
run install -d -m 0755 "$UNIT_DIR"
for unit in "$SRC_DIR"/systemd/*.service; do
    name=$(basename "$unit")
    if [[ $PREFIX == /usr/local ]]; then
        run install -m 0644 "$unit" "$UNIT_DIR/$name"
    elif [[ $DRY_RUN -eq 1 ]]; then
        printf '[dry-run] install %s to %s with /usr/local/ replaced by %s/\n' "$unit" "$UNIT_DIR/$name" "$PREFIX"
    else
        tmp=$(mktemp)
        sed "s#/usr/local/#$PREFIX/#g" "$unit" >"$tmp"
        install -m 0644 "$tmp" "$UNIT_DIR/$name"
        rm -f "$tmp"
    fi
done

# ---------------------------------------------------------------- credentials
# Writes the output of a command to FILE (0600) only if FILE does not exist. The content
# goes to a temporary file first and is hard-linked into place, which fails instead of
# overwriting if FILE appeared meanwhile. With --root an existing FILE is given back to
# root:root (/etc/pane/credentials); a file in the state dir keeps its owner, the service's
# dynamic user once systemd has handed the directory over.
create_secret() { # create_secret [--root] FILE DESCRIPTION COMMAND...
    local root=0
    if [[ $1 == --root ]]; then
        root=1
        shift
    fi
    local file=$1 what=$2
    shift 2
    if [[ -e $file || -L $file ]]; then
        say "kept existing $file"
        if [[ $DRY_RUN -eq 0 ]]; then
            if [[ $root -eq 1 ]]; then
                chown root:root "$file"
            fi
            chmod 0600 "$file"
        fi
        return
    fi
    if [[ $DRY_RUN -eq 1 ]]; then
        printf '[dry-run] create %s (%s, mode 0600)\n' "$file" "$what"
        return
    fi
    local tmp
    tmp=$(umask 077 && mktemp "$file.XXXXXX")
    "$@" >"$tmp"
    chmod 0600 "$tmp"
    if ln "$tmp" "$file" 2>/dev/null; then
        say "created $file ($what, mode 0600)"
    else
        say "kept existing $file"
    fi
    rm -f "$tmp"
}

random_hex32() { head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n'; echo; }

provider_keys_template() {
    cat <<'EOF'
# pane-agent provider keys: NAME=value lines, read by pane-agent.service through
# LoadCredential=provider-keys. Uncomment and fill in only the providers you use.
# After a change: systemctl restart pane-agent
# ADDY_API_KEY=
# SIMPLELOGIN_API_KEY=
# PRIVACY_API_KEY=
# LITHIC_API_KEY=
# HIBP_API_KEY=
# PANE_IMAP_PASSWORD=
EOF
}

sealed_provider_keys_template() {
    cat <<'EOF'
# pane-agent provider keys: NAME=value lines. Uncomment and fill in only the providers you
# use, before the first `pane-agent unseal`: the unseal takes this file into the sealed
# store and removes it. To change keys later, write the file again (mode 0600, all the keys
# you use) and unseal again, or send `secrets.reload`.
# ADDY_API_KEY=
# SIMPLELOGIN_API_KEY=
# PRIVACY_API_KEY=
# LITHIC_API_KEY=
# HIBP_API_KEY=
# PANE_IMAP_PASSWORD=
EOF
}

# The units run `pane-agent run --data-dir /var/lib/pane` (StateDirectory=pane). init never
# overwrites a file. A root-owned /var/lib/pane made here is moved to /var/lib/private/pane
# and handed, with everything in it, to the dynamic user by systemd at the first start.
if [[ $SEALED -eq 1 ]]; then
    # No secret goes to /etc/pane/credentials: init makes them inside the sealed store.
    NEW_INSTALL=0
    if [[ -e $STATE_DIR/pane.toml ]]; then
        say "kept existing sealed installation in $STATE_DIR"
    elif [[ $DRY_RUN -eq 1 ]]; then
        printf '[dry-run] %s init --data-dir %s%s (asks for the unseal passphrase; Enter generates one, printed once)\n' \
            "$BIN_DIR/pane-agent" "$STATE_DIR" "$([[ $RECOVERY -eq 1 ]] && echo ' --recovery')"
        NEW_INSTALL=1
    else
        say "making a sealed installation in $STATE_DIR (pane-agent init)"
        init_args=(init --data-dir "$STATE_DIR")
        if [[ $RECOVERY -eq 1 ]]; then
            init_args+=(--recovery)
        fi
        # Without AGENT_SECRET init makes the command secret itself, inside the sealed store
        # (with it, init would make none, and the service has no AGENT_SECRET).
        env -u AGENT_SECRET -u AGENT_SECRET_PREVIOUS "$BIN_DIR/pane-agent" "${init_args[@]}" \
            || die "pane-agent init failed"
        NEW_INSTALL=1
    fi
    # The provider keys' drop file, for a new installation only: once the first unseal has
    # taken it in, a template written again would replace the keys at the next unseal.
    if [[ $NEW_INSTALL -eq 1 ]]; then
        run install -d -m 0700 "$STATE_DIR/credentials"
        create_secret "$STATE_DIR/credentials/provider-keys" "commented template, taken in by the first unseal" sealed_provider_keys_template
    elif [[ -e $STATE_DIR/credentials/provider-keys ]]; then
        say "kept $STATE_DIR/credentials/provider-keys (taken into the sealed store at the next unseal)"
    fi
    for old in agent-secret previous-secrets provider-keys; do
        if [[ -s $CRED_DIR/$old ]]; then
            warn "$CRED_DIR/$old is in clear and the service loads it: it is taken into the sealed store at every unseal; once it is there, remove the file"
        fi
    done
else
    say "credentials in $CRED_DIR (the unsealed layout)"
    run install -d -m 0755 -o root -g root "$(dirname "$CRED_DIR")"
    run install -d -m 0700 -o root -g root "$CRED_DIR"
    create_secret --root "$CRED_DIR/agent-secret" "32 random bytes as 64 hex" random_hex32
    create_secret --root "$CRED_DIR/provider-keys" "commented template" provider_keys_template
    create_secret --root "$CRED_DIR/signal-passphrase" "32 random bytes as 64 hex" random_hex32
    # Secrets replaced by `pane-agent rotate-secret`, each with its expiry (empty at first).
    create_secret --root "$CRED_DIR/previous-secrets" "empty: rotated-out secrets" true

    # With AGENT_SECRET set init writes no agent.secret (the service reads the agent-secret
    # credential instead).
    if [[ -e $STATE_DIR/pane.toml ]]; then
        say "kept existing $STATE_DIR/pane.toml"
    elif [[ $DRY_RUN -eq 1 ]]; then
        printf '[dry-run] AGENT_SECRET=<%s> %s init --unsealed --data-dir %s\n' "$CRED_DIR/agent-secret" "$BIN_DIR/pane-agent" "$STATE_DIR"
    else
        secret=$(tr -d ' \n' <"$CRED_DIR/agent-secret")
        [[ ${#secret} -ge 32 ]] || die "$CRED_DIR/agent-secret is shorter than 32 bytes"
        say "writing $STATE_DIR/pane.toml (pane-agent init --unsealed)"
        AGENT_SECRET=$secret "$BIN_DIR/pane-agent" init --unsealed --data-dir "$STATE_DIR"
        unset secret
    fi
    if [[ -e $STATE_DIR/agent.secret ]]; then
        warn "$STATE_DIR/agent.secret exists but the service uses $CRED_DIR/agent-secret (it takes precedence); remove the file if you do not sign with it"
    fi
fi

# ---------------------------------------------------------------- systemd
if [[ -d /run/systemd/system ]] || [[ $DRY_RUN -eq 1 ]]; then
    run systemctl daemon-reload
    run systemctl enable pane-agent.service
else
    warn "systemd is not running here: run 'systemctl daemon-reload && systemctl enable pane-agent' on the target"
fi

# The control socket serves only the agent's own uid: console commands run as the units'
# dynamic user, in a transient unit (docs/operations.md).
AS_SERVICE="systemd-run --quiet --pty --wait --collect -p DynamicUser=yes -p User=pane -p StateDirectory=pane"

if [[ $SEALED -eq 1 ]]; then
    cat <<EOF

pane-agent is installed (and enabled where systemd runs), not started. The installation is
sealed: the store and every secret are encrypted at rest, and after every start (a reboot
included) the agent holds no key until you unseal it with your passphrase.

 1. Fill in the provider keys you use (NAME=value lines) before the first unseal, which
    takes them into the sealed store and removes the file:
      \$EDITOR $STATE_DIR/credentials/provider-keys
    and choose the providers and options in $STATE_DIR/pane.toml.
 2. Start the agent (it starts sealed), then unseal it as the service's user (the control
    socket serves only that uid); it asks for the passphrase:
      systemctl start pane-agent
      $AS_SERVICE \\
        $BIN_DIR/pane-agent unseal --data-dir $STATE_DIR
    After a reboot do the same, or unseal from your phone through the onion endpoint
    (provisioning/tor-hidden-service.conf; docs/security-model.md, "Sealed at rest").
 3. Link the Signal gateway (needs --with-signal; a dedicated number is recommended) as the
    service's user, while the agent runs unsealed (it hands the gateway its store key):
      systemd-run --pty --wait --collect -p DynamicUser=yes -p User=pane \\
        -p StateDirectory=pane -p StateDirectoryMode=0700 -p UMask=0077 \\
        $BIN_DIR/pane-signal link --data-dir $STATE_DIR
 4. Set [signal] owner = "<your ACI>" in $STATE_DIR/pane.toml (see docs/signal-gateway.md),
    then: systemctl restart pane-agent && systemctl enable --now pane-signal
 5. Check the host:
      $BIN_DIR/pane-agent doctor --data-dir $STATE_DIR

To sign on your phone, import the command secret, which this shows once unsealed:
  $AS_SERVICE \\
    $BIN_DIR/pane-agent signer-qr --data-dir $STATE_DIR
Keep the unseal passphrase (and the recovery one) offline: without them the store cannot be
opened. docs/sealing.md says what is sealed; docs/operations.md, backup and upgrade.
Tor, one torrc for both ways (provisioning/tor-hidden-service.conf, installed as
$DOC_DIR/torrc-pane.conf): the onion service in front of the HTTP endpoint, and the SOCKS
port every call of the agent (to the providers, HIBP, the IMAP server) and of the Signal
gateway (to Signal) goes out through.
  apt-get install tor && install -D -m 0644 $DOC_DIR/torrc-pane.conf /etc/tor/torrc.d/pane.conf
  (and "%include /etc/torrc.d/" or the file's lines in /etc/tor/torrc), systemctl reload tor,
then in $STATE_DIR/pane.toml:  [network] proxy = "socks5h://127.0.0.1:9050"
and  [http] listen = "127.0.0.1:8080", and restart both services (each reads it at start).
doctor checks the proxy answers and that the gateway reported going through it.
EOF
else
    cat <<EOF

pane-agent is installed (and enabled where systemd runs), not started. The installation is
in clear (--unsealed): the store and the secrets can be read on disk; pane-agent seal-init
seals it in place (docs/sealing.md). Next steps:

 1. Fill in the provider keys you use (NAME=value lines):
      \$EDITOR $CRED_DIR/provider-keys
    and choose the providers and options in $STATE_DIR/pane.toml.
 2. Link the Signal gateway (needs --with-signal; a dedicated number is recommended),
    as the service's dynamic user so the store is owned by it:
      systemd-run --pty --wait --collect -p DynamicUser=yes -p User=pane \\
        -p StateDirectory=pane -p StateDirectoryMode=0700 -p UMask=0077 \\
        -p LoadCredential=signal-passphrase:$CRED_DIR/signal-passphrase \\
        $BIN_DIR/pane-signal link --data-dir $STATE_DIR
    Keep a copy of $CRED_DIR/signal-passphrase offline.
 3. Set [signal] owner = "<your ACI>" in $STATE_DIR/pane.toml (see docs/signal-gateway.md).
 4. Start:
      systemctl start pane-agent && systemctl enable --now pane-signal
 5. Check the host:
      AGENT_SECRET="\$(cat $CRED_DIR/agent-secret)" $BIN_DIR/pane-agent doctor --data-dir $STATE_DIR

Sign commands on your own device with the secret in $CRED_DIR/agent-secret.
See docs/operations.md for backup, upgrade and incident response.
Tor, one torrc for both ways (provisioning/tor-hidden-service.conf, installed as
$DOC_DIR/torrc-pane.conf): the onion service in front of the HTTP endpoint, and the SOCKS
port every call of the agent (to the providers, HIBP, the IMAP server) and of the Signal
gateway (to Signal) goes out through.
  apt-get install tor && install -D -m 0644 $DOC_DIR/torrc-pane.conf /etc/tor/torrc.d/pane.conf
  (and "%include /etc/torrc.d/" or the file's lines in /etc/tor/torrc), systemctl reload tor,
then in $STATE_DIR/pane.toml:  [network] proxy = "socks5h://127.0.0.1:9050"
and  [http] listen = "127.0.0.1:8080", and restart both services (each reads it at start).
doctor checks the proxy answers and that the gateway reported going through it.
EOF
fi
