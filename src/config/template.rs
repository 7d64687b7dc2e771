//! The commented configuration template.

/// The file `pane-agent init` writes: every setting, commented, at its default.
pub const TEMPLATE: &str = r#"# pane-agent configuration. Every setting is listed with its default.
# This file must be readable by its owner only (chmod 600): the agent refuses to start otherwise.
# The command secret is not here: it is in agent.secret (or AGENT_SECRET in the environment).

[auth]
# Secrets from before a rotation, still accepted for commands (never used to sign).
# AGENT_SECRET_PREVIOUS in the environment (comma-separated) adds to this list.
previous_secrets = []
# Days a secret replaced by `pane-agent rotate-secret` is still accepted; the running agent
# refuses it from the second the grace ends. 0 = refused at once (a secret known to be stolen).
# rotate-secret reads this from the config the agent runs with (its --config, else this file).
rotation_grace_days = 7
# Days after which `pane-agent doctor` says the secret is due for rotation.
rotation_days = 90

[http]
# POST /command and GET /healthz for a Tor onion service in front of it. Empty = off.
# Loopback addresses only, e.g. "127.0.0.1:8080".
listen = ""
# Bounds that keep slow or stalled clients from holding the endpoint (a Tor onion service
# lets anyone connect). Seconds for a request's line and headers (also the longest a
# kept-alive connection waits for its next request), and for its whole body:
header_timeout_secs = 10
body_timeout_secs = 10
# A connection that moves no byte for this long, while the agent is not working on its
# request, is closed (a client that stops reading its reply).
idle_timeout_secs = 60
# Connections served at once; more wait in the listen queue until one ends. The agent needs
# this many file descriptors plus 256 (the unit sets LimitNOFILE=4096) and refuses to start
# otherwise.
max_connections = 256

[approvals]
# Seconds before a pending approval is denied automatically.
timeout_secs = 300
# true (default): once [signal] owner is set, approval codes go only to the owner over Signal
# (no reply, `approvals`, audit entry, incident or error elsewhere holds one), so a stolen
# command secret alone cannot approve anything. false shows codes on every channel.
codes_over_signal_only = true

[policy]
# Tools that have no grant until the owner sends `grant {tool}`.
revoked_by_default = []

[rate_limits]
# Sliding-window limits for each tool, by tier.
read = { max = 120, window_secs = 60 }
write = { max = 30, window_secs = 60 }
external = { max = 10, window_secs = 60 }
# Authenticated envelopes per channel, counted before anything of them is written.
envelopes = { max = 600, window_secs = 60 }

[rate_limits.tools]
# Per-tool overrides, for example:
# "grant" = { max = 3, window_secs = 3600 }

[audit]
# Prune audit entries older than this many days (the rest stays verifiable). 0 keeps all.
retention_days = 400
# The store's size budget in MiB: at 90 % the owner is alerted; past it only reads, lockdown,
# approve/deny, revoke and unlock are carried out.
store_budget_mb = 1024

[seal]
# On a sealed installation: seal (forget every key until the owner unseals) when no command
# from the owner arrived for this many hours. 0 never seals by itself.
after_idle_hours = 0

[aliases]
# Who makes aliases: "addy" (ADDY_API_KEY) or "simplelogin" (SIMPLELOGIN_API_KEY).
provider = "addy"
# At most this many calls to the provider at once; after a 429 the provider's own work waits.
concurrency = 10
# Base URLs; empty = the real service. ADDY_BASE_URL / SIMPLELOGIN_BASE_URL override them.
# Plain http is accepted only for loopback (local test servers).
addy_base_url = ""
simplelogin_base_url = ""
# addy.io: the domain and format of new aliases.
addy_domain = "anonaddy.me"
addy_format = "random_characters"

[cards]
# Who makes cards: "privacy" (PRIVACY_API_KEY) or "lithic" (LITHIC_API_KEY).
provider = "privacy"
# At most this many calls to the provider at once; after a 429 the provider's own work waits.
concurrency = 10
# Base URLs; empty = the real service. PRIVACY_BASE_URL / LITHIC_BASE_URL override them.
privacy_base_url = ""
lithic_base_url = ""
# The largest spend limit card.fund accepts, in whole currency units.
max_limit = 1000

[identity]
# The postal address placeholder identities give: a P.O. box or mail-forwarding address,
# never your real one. Empty = placeholders have no address.
forwarding_address = ""

[breach]
# Burn (expire) a context as soon as an incident is found, without asking. Off: the burn is
# queued as an approval.
auto_burn = false
# Pause a context's card at once (audited) when a merchant other than the site charges it.
auto_pause = true
# The authserv-ids whose Authentication-Results headers are believed when mail claims to come
# from a site's own domain (addy.io's X-AnonAddy-Authentication-Results too). Empty = the
# IMAP host below. Headers from any other server are never believed.
trusted_authserv_ids = []
# Alias domains of your own, verified with Have I Been Pwned's domain search (subscription):
# one request covers every alias on the domain. Empty = [aliases] addy_domain when it is your
# own domain rather than one of addy.io's shared ones.
hibp_domains = []
# Have I Been Pwned, on when HIBP_API_KEY is set: each alias (at most 20 a sweep, each at
# most once a day) and each enrolled site's domain. Empty = the real service; HIBP_BASE_URL
# overrides.
hibp_base_url = ""

[breach.imap]
# The mailbox the aliases forward to. Empty host = this source is off.
# The password comes from PANE_IMAP_PASSWORD. tls = "tls" | "starttls" | "none" (loopback only).
host = ""
port = 993
tls = "tls"
user = ""
mailbox = "INBOX"
# Wait for new mail with IMAP IDLE between sweeps and sweep as soon as it arrives.
idle = true
# A PEM file of CA certificates to trust besides the public ones (a self-hosted server with
# its own CA). The server's certificate must still name the host above.
ca_file = ""

[signal]
# The owner's ACI (a UUID, shown by pane-signal when you message it). Messages from anyone
# else get no reply and no action. Empty = the Signal channel accepts no one.
owner = ""
# true when the agent is linked to your own account and you type commands into Note to Self;
# false (recommended) when the agent has its own number.
note_to_self = false

[alerts]
# The Signal link counts as unusable when its registration is not ok (unlinked, unregistered,
# a captcha to solve, an outdated gateway), or when the gateway has been disconnected from
# Signal, or no gateway connected to the agent, for this many seconds:
unusable_after_secs = 300
# A second way to warn you, since a dead link cannot carry its own alarm: an ntfy-compatible
# URL (https://ntfy.sh/<a topic nobody guesses>, or your own server) that gets one short
# message when Signal has been unusable for fallback_after_mins (fractions allowed), and one
# when it works again. Nothing of yours is in them (no context, alias or phone number).
# Empty = off. https; plain http only to a loopback host, or to an onion service through
# [network] proxy (with a proxy the message goes through Tor, on a circuit of its own).
# PANE_ALERTS_TOKEN (environment or provider-keys) is sent as a Bearer token.
fallback_url = ""
fallback_after_mins = 15
# Warn once when the link had no activity for this many days: Signal unlinks a linked device
# after about 30 days without. 0 = never.
inactive_warn_days = 21

[network]
# Every outbound connection of the agent (the alias and card providers, Have I Been Pwned,
# the IMAP server) through this SOCKS5 proxy, e.g. the system Tor's "socks5h://127.0.0.1:9050".
# socks5h only: the proxy resolves every name, the agent looks up none. Each provider gets a
# Tor circuit of its own (SOCKS user name isolation), renewed when a context is expired. A
# connection that cannot go through it fails ("Tor is not reachable at ..."): never direct.
# Empty = direct connections (`pane-agent doctor` warns). pane-signal reads this too when it
# starts and reaches Signal through it, on a circuit of its own (docs/signal-gateway.md,
# "Through Tor"): after a change, restart both.
proxy = ""

[jobs]
# Slow work (provider calls, sweeps, start-up reconciliation) runs beside the command path, so
# lockdown, approve, deny, list and status answer at once. A job that runs longer than this
# ends with an error; what it started is reconciled by the next try or at start.
deadline_secs = 120

[mcp]
# The MCP key (`pane-agent mcp-key`, used by `pane-agent mcp`): what a model may do through it.
# "default" = every read and write tool, and the external ones (card.fund, card.close, expire)
# only as approval requests the owner answers on their phone; or a list of command names.
# Whatever this says, approve, deny, grant, revoke, unlock, trust, secrets.reload, lockdown and
# signal.challenge are never the MCP key's. It works only when approvals go to the phone
# ([signal] owner set and codes_over_signal_only = true).
tools = "default"

[mcp.rate_limits]
# The MCP key's own sliding windows, apart from every other channel's.
read = { max = 60, window_secs = 60 }
write = { max = 10, window_secs = 60 }
external = { max = 3, window_secs = 60 }
envelopes = { max = 120, window_secs = 60 }

[schedule]
# Cron expressions with seconds: sec min hour day-of-month month day-of-week (UTC).
# A run missed while the agent was down runs once at start.
breach_sweep = "0 0 * * * *"
weekly_digest = "0 0 9 * * Mon"
secret_rotation_reminder = "0 0 9 1 1,4,7,10 *"
"#;
