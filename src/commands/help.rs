//! `help`: the commands, their tiers and arguments, and which tools are granted now.

use super::{specs, Args, Cmd, Fast, Run, Spec};
use crate::policy::tools::Tier;
use crate::reply::{internal, CommandError, Words};
use crate::words::lines::SIGNAL_TEXT_LIMIT;
use serde::Serialize;

/// `help` takes no arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct Help;

/// How an envelope is signed, as `help` tells it.
const ENVELOPE: &str = "{\"ts\", \"cmd\", \"args\", \"sig\"}: sig = hex HMAC-SHA256(secret, ts + cmd + json.dumps(args, sort_keys=True))";

/// What `help` answers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HelpOutput {
    /// Every command, in the registry's order.
    pub commands: Vec<CommandLine>,
    /// How to sign an envelope.
    pub envelope: &'static str,
}

/// One command in `help`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CommandLine {
    /// Its name.
    pub name: &'static str,
    /// Its arguments (`{context, limit?}`).
    pub args: String,
    /// Its tier.
    pub tier: &'static str,
    /// Whether it may run now.
    pub granted: bool,
    /// What it does.
    pub summary: &'static str,
}

impl Cmd for Help {
    const SPECS: &'static [Spec] = &[Spec::new(
        "help",
        Tier::Read,
        false,
        &[],
        "list the commands",
    )];

    fn parse(_name: &str, _args: &Args<'_>) -> Result<Help, CommandError> {
        Ok(Help)
    }

    /// Lists every command with its tier and whether it may run now.
    fn run(self, fast: &Fast<'_>) -> Result<Run, CommandError> {
        let mut commands = Vec::new();
        for spec in specs() {
            commands.push(CommandLine {
                name: spec.name(),
                args: spec.usage(),
                tier: spec.tool.tier.as_str(),
                granted: fast.grants.is_granted(&spec.tool).map_err(internal)?,
                summary: spec.summary,
            });
        }
        Run::done(HelpOutput {
            commands,
            envelope: ENVELOPE,
        })
    }
}

impl Words for HelpOutput {
    /// One line per command: its name and arguments, what it does, its tier, and whether it
    /// is granted now; without what it does when that would not fit in one message.
    fn words(&self, _cmd: &str) -> String {
        let full = self.lines(true);
        if full.len() <= SIGNAL_TEXT_LIMIT {
            return full;
        }
        self.lines(false)
    }
}

impl HelpOutput {
    fn lines(&self, summaries: bool) -> String {
        let mut out = String::from("Commands (send each as a signed envelope):");
        for c in &self.commands {
            let granted = if c.granted { "" } else { ", not granted" };
            let summary = if summaries {
                format!(" — {}", c.summary)
            } else {
                String::new()
            };
            out.push_str(&format!(
                "\n• {}{}{}{summary} ({}{granted})",
                c.name,
                if c.args.is_empty() { "" } else { " " },
                c.args,
                c.tier,
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(
        name: &'static str,
        tier: &'static str,
        granted: bool,
        summary: &'static str,
    ) -> CommandLine {
        CommandLine {
            name,
            args: "{context}".into(),
            tier,
            granted,
            summary,
        }
    }

    #[test]
    fn help_is_one_line_per_command() {
        let mut list = line("list", "read", true, "list the contexts");
        list.args = "{refresh?}".into();
        let help = HelpOutput {
            commands: vec![list, line("expire", "external", false, "burn a context")],
            envelope: "...",
        };
        let text = help.words("help");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(lines[1], "• list {refresh?} — list the contexts (read)");
        assert_eq!(
            lines[2],
            "• expire {context} — burn a context (external, not granted)"
        );
        // Too many to fit with what each does: one line each all the same, without it.
        let names: Vec<&'static str> = (0..40)
            .map(|i| &*Box::leak(format!("tool{i}").into_boxed_str()))
            .collect();
        let many = HelpOutput {
            commands: names
                .into_iter()
                .map(|n| line(n, "read", true, "does something useful with a context"))
                .collect(),
            envelope: "...",
        };
        let text = many.words("help");
        assert_eq!(text.lines().count(), 41, "{text}");
        assert!(text.ends_with("\n• tool39 {context} (read)"), "{text}");
    }
}
