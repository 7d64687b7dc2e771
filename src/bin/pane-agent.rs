//! The `pane-agent` binary: parses the command line and hands off to `pane_agent::cli`.

use clap::Parser;
use pane_agent::cli::{self, Cli, CliCommand};
use std::process::ExitCode;

fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    // Without RUST_LOG a fixed level, which costs nothing to build; an env filter compiles
    // its directives, a cost every short client command (`send`, `command`) would pay.
    // Every line through the redactor (see `pane_agent::logging`).
    let logs = tracing_subscriber::fmt().with_writer(pane_agent::logging::RedactedStderr);
    // The demo's own lines are its story: log lines only with -v.
    let quiet = matches!(&cli.command, CliCommand::Demo(args) if !args.verbose);
    match std::env::var("RUST_LOG") {
        _ if quiet => logs.with_max_level(tracing::Level::WARN).init(),
        Ok(filter) if !filter.is_empty() => logs
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .init(),
        _ => logs.with_max_level(tracing::Level::INFO).init(),
    }
    // The daemon and the demo get a worker per core; the one-shot client commands a single
    // thread, which starts faster.
    let runtime = match cli.command {
        CliCommand::Run(_) | CliCommand::Demo(_) => tokio::runtime::Builder::new_multi_thread(),
        _ => tokio::runtime::Builder::new_current_thread(),
    }
    .enable_all()
    .build()?;
    runtime.block_on(dispatch(cli))
}

async fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        CliCommand::Init(args) => {
            for line in cli::init::run(&args).await? {
                println!("{line}");
            }
        }
        CliCommand::Unseal(dir) => return Ok(cli::print_reply(&cli::unseal::unseal(&dir).await?)),
        CliCommand::SealInit(args) => {
            for line in cli::seal_init::seal_init(&args).await? {
                println!("{line}");
            }
        }
        CliCommand::Run(args) => cli::run::run(&args).await?,
        CliCommand::Sign(args) => println!("{}", cli::sign::sign(&args).await?),
        CliCommand::Send(args) => return Ok(cli::print_reply(&cli::send::send(&args).await?)),
        CliCommand::Command(args) => {
            return Ok(cli::print_reply(&cli::command::command(&args).await?))
        }
        CliCommand::Demo(args) => cli::demo::demo(&args).await?,
        CliCommand::McpKey(dir) => {
            for line in cli::mcp::mcp_key(&dir)? {
                println!("{line}");
            }
        }
        CliCommand::Mcp(args) => cli::mcp::mcp(&args).await?,
        CliCommand::SignerQr(dir) => cli::signer_qr::signer_qr(
            &cli::signer_qr::current_secret(&dir.resolve()?).await?,
            &mut std::io::stdout().lock(),
            &mut std::io::stderr(),
            &mut std::io::stdin().lock(),
        )?,
        CliCommand::Doctor(args) => {
            let ok = cli::doctor::print(&cli::doctor::run_checks(&args)?);
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
        CliCommand::Trust(dir) => return console_command(dir, "trust").await,
        CliCommand::Unlock(dir) => return console_command(dir, "unlock").await,
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

/// Sends one of the console's own commands (`trust`, `unlock`) over the control socket.
async fn console_command(dir: cli::DataDirArg, cmd: &str) -> anyhow::Result<ExitCode> {
    let args = cli::CommandArgs {
        data_dir: dir,
        cmd: cmd.into(),
        args: Vec::new(),
    };
    Ok(cli::print_reply(&cli::send::send(&args).await?))
}
