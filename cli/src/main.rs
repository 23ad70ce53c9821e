//! The `cmdreporter` binary.

use std::io::Write;
use std::time::Duration;

use clap::{Parser, Subcommand};
use cmdreporter_cli::run::{RunOptions, exit_code, run};
use cmdreporter_cli::{EXIT_CMDREPORTER_ERROR, OsHost, courier_main};

#[derive(Debug, Parser)]
#[command(
    name = "cmdreporter",
    version,
    about = "Run a one-off command in a container image as a Kubernetes Job and get its output back"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a command as a Job and pass its output and exit status through.
    Run {
        /// Use an embedded fake cluster whose containers are local processes.
        #[arg(long)]
        fake: bool,
        /// Namespace of the Job.
        #[arg(short = 'n', long, default_value = "default")]
        namespace: String,
        /// Image the command runs in.
        #[arg(long, default_value = "busybox:stable")]
        image: String,
        /// Image holding the cmdreporter binary.
        #[arg(long, default_value = cmdreporter_core::request::DEFAULT_REPORTER_IMAGE)]
        reporter_image: String,
        /// Base name of the Job.
        #[arg(long, default_value = "cmdreporter")]
        name: String,
        /// Timeout of the whole run, in seconds.
        #[arg(long, default_value_t = 300)]
        timeout: u64,
        /// The command and its arguments.
        #[arg(last = true, required = true)]
        argv: Vec<String>,
    },
    /// (In the pod) run a command once and report it.
    Report {
        /// Arguments.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// (In the init container) copy this executable to DEST.
    Install {
        /// Destination path.
        dest: String,
    },
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("CMDREPORTER_LOG"))
        .with_writer(std::io::stderr)
        .init();
    let raw: Vec<String> = std::env::args().collect();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cmdreporter: cannot start the async runtime: {e}");
            std::process::exit(EXIT_CMDREPORTER_ERROR);
        }
    };
    let code = rt.block_on(async {
        // The in-pod subcommands share their parser with the scripted runtime.
        if matches!(raw.get(1).map(String::as_str), Some("report" | "install")) {
            return courier_main(&raw, &OsHost::new()).await;
        }
        let cli = match Cli::try_parse_from(&raw) {
            Ok(c) => c,
            Err(e) => {
                let _ = e.print();
                return if e.use_stderr() {
                    EXIT_CMDREPORTER_ERROR
                } else {
                    0
                };
            }
        };
        match cli.command {
            Command::Run {
                fake,
                namespace,
                image,
                reporter_image,
                name,
                timeout,
                argv,
            } => {
                let opts = RunOptions {
                    fake,
                    namespace,
                    image,
                    reporter_image,
                    name,
                    timeout: Duration::from_secs(timeout),
                    argv,
                };
                let result = run(&opts).await;
                match &result {
                    Ok(o) => {
                        let _ = std::io::stdout().write_all(&o.stdout.data);
                        let _ = std::io::stdout().flush();
                        let _ = std::io::stderr().write_all(&o.stderr.data);
                        let _ = std::io::stderr().flush();
                    }
                    Err(e) => eprintln!("cmdreporter: {e}"),
                }
                exit_code(&result)
            }
            Command::Report { .. } | Command::Install { .. } => unreachable!("handled above"),
        }
    });
    drop(rt);
    std::process::exit(code);
}
