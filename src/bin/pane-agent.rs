//! The `pane-agent` binary: parses the command line and hands off to `pane_agent::cli`.

use clap::Parser;
use pane_agent::cli::{self, Cli, CliCommand};
use std::process::ExitCode;

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        CliCommand::Init(dir) => {
            for line in cli::init::init(&dir.resolve()?)? {
                println!("{line}");
            }
        }
        CliCommand::Run(args) => cli::run::run(&args).await?,
        CliCommand::Sign(args) => println!("{}", cli::sign::sign(&args)?.to_json()),
        CliCommand::Send(args) => return Ok(cli::print_reply(&cli::send::send(&args).await?)),
        CliCommand::Command(args) => {
            return Ok(cli::print_reply(&cli::command::command(&args).await?))
        }
        CliCommand::Demo => cli::demo::demo().await?,
        CliCommand::Doctor(dir) => {
            let ok = cli::doctor::print(&cli::doctor::run_checks(&dir)?);
            return Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            });
        }
        CliCommand::RotateSecret(dir) => {
            for line in cli::rotate_secret::rotate_secret(&dir).await? {
                println!("{line}");
            }
        }
        CliCommand::Trust(dir) => {
            let args = cli::CommandArgs {
                data_dir: dir,
                cmd: "trust".into(),
                args: Vec::new(),
            };
            return Ok(cli::print_reply(&cli::send::send(&args).await?));
        }
        CliCommand::CheckIncidents(dir) => match cli::check_incidents::check_incidents(&dir).await?
        {
            Ok(lines) => {
                for line in lines {
                    println!("{line}");
                }
            }
            Err(reply) => return Ok(cli::print_reply(&reply)),
        },
    }
    Ok(ExitCode::SUCCESS)
}
