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

#[derive(Debug, PartialEq, Eq, Subcommand)]
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

/// The two command lines the library writes into its Jobs, read without clap:
/// `install DEST` and `report --transport T --run-id R -- ARGV...` (either option first),
/// every value non-empty and not starting with `-`. Building clap's parser for one parse
/// costs about 40 k instructions, as much as the rest of a short command's courier; for
/// these forms clap reads the same (`tests::plain_command_lines_read_as_clap_reads_them`).
/// Anything else (`--transport=x`, help, mistakes) is `None`, left to clap and its errors.
fn parse_plain(argv: &[String]) -> Option<CourierCommand> {
    let plain = |s: &str| !s.is_empty() && !s.starts_with('-');
    match argv {
        [_, sub, dest] if sub == "install" && plain(dest) => {
            Some(CourierCommand::Install { dest: dest.clone() })
        }
        [_, sub, o1, v1, o2, v2, sep, rest @ ..]
            if sub == "report" && sep == "--" && !rest.is_empty() && plain(v1) && plain(v2) =>
        {
            let (transport, run_id) = match (o1.as_str(), o2.as_str()) {
                ("--transport", "--run-id") => (v1, v2),
                ("--run-id", "--transport") => (v2, v1),
                _ => return None,
            };
            Some(CourierCommand::Report {
                transport: transport.clone(),
                run_id: run_id.clone(),
                argv: rest.to_vec(),
            })
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
    let command = match parse_plain(argv) {
        Some(c) => Ok(c),
        None => CourierCli::try_parse_from(argv).map(|c| c.command),
    };
    let command = match command {
        Ok(c) => c,
        Err(e) => {
            let msg = e.to_string();
            host.write_stderr(msg.as_bytes()).await;
            let _ = host.write_termination_message(&termination_log, &msg);
            return courier::EXIT_MISCONFIGURED;
        }
    };
    match command {
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

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};

    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn the_library_s_command_lines_are_read_without_clap() {
        let report = args(&[
            "/var/run/cmdreporter/cmdreporter",
            "report",
            "--transport",
            "configmap",
            "--run-id",
            "abc",
            "--",
            "/bin/sh",
            "-c",
            "echo --",
        ]);
        assert_eq!(
            parse_plain(&report),
            Some(CourierCommand::Report {
                transport: "configmap".into(),
                run_id: "abc".into(),
                argv: args(&["/bin/sh", "-c", "echo --"]),
            })
        );
        let install = args(&[
            "/cmdreporter",
            "install",
            "/var/run/cmdreporter/cmdreporter",
        ]);
        assert_eq!(
            parse_plain(&install),
            Some(CourierCommand::Install {
                dest: "/var/run/cmdreporter/cmdreporter".into()
            })
        );
        assert_eq!(
            parse_plain(&args(&[
                "c",
                "report",
                "--transport=logs",
                "--run-id",
                "r",
                "--",
                "x"
            ])),
            None
        );
        assert_eq!(parse_plain(&args(&["c", "install", "-h"])), None);
    }

    /// Every command line the fast path reads, clap reads the same: command lines of up to
    /// nine words drawn (seeded) from words that matter to clap.
    #[test]
    fn plain_command_lines_read_as_clap_reads_them() {
        let words = [
            "report",
            "install",
            "--transport",
            "--run-id",
            "--",
            "-",
            "",
            "configmap",
            "logs",
            "r1",
            "help",
            "--help",
            "-h",
            "-x",
            "--transport=logs",
            "a b",
            "--run-id=r",
            "/bin/true",
            "dest",
        ];
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x9e37_79b9_7f4a_7c15);
        let mut next = |n: usize| rng.random_range(0..n);
        let mut fast = 0;
        for i in 0..40_000 {
            let len = 2 + next(8);
            let mut argv = vec!["cmdreporter".to_owned()];
            // Half of them start like the library's own lines, so that the fast path is
            // taken often.
            let template = ["report", "--transport", "x", "--run-id", "y", "--"];
            for k in 1..len {
                if i % 2 == 0 && k <= template.len() && next(4) != 0 {
                    argv.push(template[k - 1].to_owned());
                } else {
                    argv.push(words[next(words.len())].to_owned());
                }
            }
            if let Some(got) = parse_plain(&argv) {
                fast += 1;
                let clap = CourierCli::try_parse_from(&argv).map(|c| c.command);
                assert_eq!(clap.ok().as_ref(), Some(&got), "{argv:?}");
            }
        }
        assert!(fast > 1_000, "the fast path was taken {fast} times");
    }
}
