//! `cmdreporter report` and `cmdreporter install`: the in-pod side.

use clap::{Parser, Subcommand};
use cmdreporter_core::courier::{self, CourierHost, Delivery};
use cmdreporter_core::job::{TERMINATION_MESSAGE_PATH, env};

/// The in-pod subcommands.
#[derive(Debug, Parser)]
#[command(name = "cmdreporter", no_binary_name = false)]
struct CourierCli {
    #[command(subcommand)]
    command: CourierCommand,
}

#[derive(Debug, Subcommand)]
enum CourierCommand {
    /// Run a command once and report its output through a transport.
    Report {
        /// The transport: `configmap` or `logs`.
        #[arg(long, default_value = "configmap")]
        transport: String,
        /// The run id the report must carry.
        #[arg(long)]
        run_id: String,
        /// The command and its arguments.
        #[arg(last = true, required = true)]
        argv: Vec<String>,
    },
    /// Copy this executable to DEST (mode 0755).
    Install {
        /// Destination path.
        dest: String,
    },
}

/// The delivery of a transport, by its name.
pub fn delivery(transport: &str) -> Option<Box<dyn Delivery>> {
    match transport {
        cmdreporter_configmap::TRANSPORT => {
            Some(Box::new(cmdreporter_configmap::ConfigMapDelivery::new()))
        }
        cmdreporter_k8s_logs::TRANSPORT => {
            Some(Box::new(cmdreporter_k8s_logs::LogsDelivery::new()))
        }
        _ => None,
    }
}

/// Runs `cmdreporter report ...` or `cmdreporter install ...` with `argv` (`argv[0]` first)
/// in `host`; returns the exit code.
pub async fn courier_main(argv: &[String], host: &dyn CourierHost) -> i32 {
    let termination_log = host
        .env(env::TERMINATION_LOG)
        .unwrap_or_else(|| TERMINATION_MESSAGE_PATH.to_owned());
    let cli = match CourierCli::try_parse_from(argv) {
        Ok(c) => c,
        Err(e) => {
            let msg = e.to_string();
            host.write_stderr(msg.as_bytes()).await;
            let _ = host.write_termination_message(&termination_log, &msg);
            return courier::EXIT_MISCONFIGURED;
        }
    };
    match cli.command {
        CourierCommand::Install { dest } => match host.install(&dest) {
            Ok(()) => 0,
            Err(e) => {
                let msg = format!("cmdreporter: install {dest}: {e}");
                host.write_stderr(format!("{msg}\n").as_bytes()).await;
                let _ = host.write_termination_message(&termination_log, &msg);
                1
            }
        },
        CourierCommand::Report {
            transport,
            run_id,
            argv,
        } => {
            let Some(delivery) = delivery(&transport) else {
                let msg = format!("cmdreporter: unknown transport {transport:?}");
                host.write_stderr(format!("{msg}\n").as_bytes()).await;
                let _ = host.write_termination_message(&termination_log, &msg);
                return courier::EXIT_MISCONFIGURED;
            };
            courier::report(host, delivery.as_ref(), &run_id, &argv, &termination_log).await
        }
    }
}
