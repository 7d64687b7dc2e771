//! `signal.challenge {captcha}`: the owner's answer to the captcha Signal set (a
//! `proof_required` health line). The core hands it to the connected gateway with the
//! challenge's token (`submit_challenge`); the gateway submits it to Signal and sends what
//! waited, and its next `health` line shows the outcome. The owner's only: never the MCP
//! key's (a model must not solve Signal's challenges for it), and the answer is never
//! written to disk or the audit log.

use super::{Args, Cmd, Fast, Run, Spec};
use crate::commands::args::{req, Arg, Kind};
use crate::gateway::protocol::CoreCommand;
use crate::policy::tools::Tier;
use crate::reply::{internal, CommandError, ErrorKind, Words};
use serde::Serialize;

/// The longest answer accepted (hCaptcha's tokens are a few kB).
const MAX_CAPTCHA: usize = 8192;

/// What the signalcaptchas.org page hands over: a `signalcaptcha://` link, whose scheme
/// the gateway does not want.
const SCHEME: &str = "signalcaptcha://";

const CAPTCHA: Arg = req(
    "captcha",
    Kind::Captcha,
    "the signalcaptcha:// link https://signalcaptchas.org/challenge/generate gives once solved",
);

/// `signal.challenge {captcha}`
#[derive(Clone, PartialEq)]
pub struct SignalChallenge {
    /// The answer, without its scheme.
    captcha: String,
}

impl std::fmt::Debug for SignalChallenge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SignalChallenge { captcha: <redacted> }")
    }
}

/// What `signal.challenge` answers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChallengeSubmitted {
    /// `submitted`.
    pub status: &'static str,
}

impl Words for ChallengeSubmitted {
    fn words(&self, cmd: &str) -> String {
        format!("✓ {cmd}: handed to the Signal gateway, which sends it to Signal and then what waited; `health` shows when Signal takes messages again")
    }
}

impl Cmd for SignalChallenge {
    const SPECS: &'static [Spec] = &[Spec::new(
        "signal.challenge",
        Tier::Write,
        false,
        &[CAPTCHA],
        "answer the captcha Signal asks for (see `health`); the owner's only",
    )];

    fn parse(_name: &str, args: &Args<'_>) -> Result<SignalChallenge, CommandError> {
        let text = args.string("captcha")?;
        let text = text.trim();
        let captcha = text.strip_prefix(SCHEME).unwrap_or(text);
        let fine = !captcha.is_empty()
            && captcha.len() <= MAX_CAPTCHA
            && captcha.chars().all(|c| c.is_ascii_graphic());
        if !fine {
            return Err(CommandError::new(
                ErrorKind::InvalidArgs,
                "invalid args: captcha must be the signalcaptcha:// link the captcha page gives (printable ASCII, no spaces)",
            ));
        }
        Ok(SignalChallenge {
            captcha: captcha.to_string(),
        })
    }

    /// Leaves `submit_challenge` for the connected gateway, or says why it cannot.
    fn run(self, fast: &Fast<'_>) -> Result<Run, CommandError> {
        let state = fast.link.records().state().map_err(internal)?;
        let Some(token) = state.challenge_token() else {
            return Err(CommandError::new(
                ErrorKind::Conflict,
                "no challenge is pending: Signal has not asked for a captcha (`health` shows the link)",
            ));
        };
        if !state.gateway_connected() {
            return Err(CommandError::new(
                ErrorKind::Unavailable,
                "no Signal gateway is connected to the agent: start pane-signal, then send it again",
            ));
        }
        fast.link.mailbox().post(CoreCommand::SubmitChallenge {
            token: token.to_string(),
            captcha: self.captcha,
        });
        Run::done(ChallengeSubmitted {
            status: "submitted",
        })
    }
}
