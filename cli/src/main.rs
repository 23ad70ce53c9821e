//! The `cmdreporter` binary.

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use cmdreporter_cli::cluster::Target;
use cmdreporter_cli::duration::parse_duration;
use cmdreporter_cli::output::{self, Format};
use cmdreporter_cli::progress::Sink;
use cmdreporter_cli::rbac::{self, RbacOptions};
use cmdreporter_cli::run::{RunOptions, run};
use cmdreporter_cli::serve::{self, ServeOptions};
use cmdreporter_cli::{EXIT_CMDREPORTER_ERROR, OsHost, courier_main};
use cmdreporter_core::request::DEFAULT_REPORTER_IMAGE;

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
    Run(RunArgs),
    /// Print the least RBAC a run needs: ServiceAccount, Role and RoleBinding YAML for
    /// the operator side and the pod side.
    Rbac(RbacArgs),
    /// The fake cluster.
    #[command(name = "fake-cluster", subcommand)]
    FakeCluster(FakeClusterCommand),
    /// (In the pod) run a command once and report it: `report [--transport T] --run-id ID -- CMD...`.
    Report {
        /// What the dispatcher passes.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// (In the init container) copy this executable to DEST, mode 0755.
    Install {
        /// Destination path.
        dest: String,
    },
}

#[derive(Debug, Args)]
struct RunArgs {
    /// Use an embedded fake cluster whose containers are local processes.
    #[arg(long, conflicts_with_all = ["kubeconfig", "context"])]
    fake: bool,
    /// Kubeconfig file (default: as kubectl finds it: KUBECONFIG, ~/.kube/config, in-cluster).
    #[arg(long, value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    /// Kubeconfig context (default: the current one).
    #[arg(long, value_name = "NAME")]
    context: Option<String>,
    /// Namespace of the Job (default: the context's, else `default`).
    #[arg(short = 'n', long, value_name = "NS")]
    namespace: Option<String>,
    /// Image the command runs in.
    #[arg(long, value_name = "IMAGE", default_value = "busybox:stable")]
    image: String,
    /// Image holding the cmdreporter binary at /cmdreporter.
    #[arg(long, value_name = "IMAGE", default_value = DEFAULT_REPORTER_IMAGE)]
    reporter_image: String,
    /// How the report travels back: configmap or logs.
    #[arg(long, value_name = "NAME", default_value = "configmap")]
    transport: String,
    /// Base name of the Job (a run id is appended).
    #[arg(long, value_name = "NAME", default_value = "cmdreporter")]
    name: String,
    /// Timeout of the whole run, e.g. 90s, 5m, 1h30m.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration)]
    timeout: Duration,
    /// Service account of the Job's pod.
    #[arg(long, value_name = "SA")]
    service_account: Option<String>,
    /// Output: text (streams and exit status passed through) or json (one object).
    #[arg(long, value_name = "FORMAT", value_enum, default_value_t = Format::Text)]
    output: Format,
    /// No progress lines on stderr.
    #[arg(short, long)]
    quiet: bool,
    /// The command and its arguments.
    #[arg(last = true, required = true, value_name = "CMD")]
    argv: Vec<String>,
}

#[derive(Debug, Args)]
struct RbacArgs {
    /// The transport: configmap or logs.
    #[arg(long, value_name = "NAME", default_value = "configmap")]
    transport: String,
    /// Namespace the Jobs run in.
    #[arg(short = 'n', long, value_name = "NS", default_value = "default")]
    namespace: String,
    /// The operator's service account.
    #[arg(long, value_name = "SA", default_value = "cmdreporter-operator")]
    service_account: String,
    /// The service account of the errands' pods (configmap transport).
    #[arg(long, value_name = "SA", default_value = "cmdreporter-courier")]
    pod_service_account: String,
    /// ClusterRole and ClusterRoleBinding for an operator running errands in several
    /// namespaces (the courier's ClusterRole bound in each errand namespace).
    #[arg(long)]
    cluster_wide: bool,
    /// With --cluster-wide: a namespace errands run in (repeatable; default: --namespace).
    #[arg(long, value_name = "NS", requires = "cluster_wide")]
    errand_namespace: Vec<String>,
}

#[derive(Debug, Subcommand)]
enum FakeClusterCommand {
    /// Serve the fake cluster (process runtime) until interrupted.
    Serve {
        /// Address to listen on (port 0: any free port).
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
        addr: SocketAddr,
        /// Write a kubeconfig for this server to FILE.
        #[arg(long, value_name = "FILE")]
        kubeconfig_out: Option<PathBuf>,
        /// Make pulls of IMAGE fail (ErrImagePull); repeatable.
        #[arg(long, value_name = "IMAGE")]
        unpullable_image: Vec<String>,
        /// An image holding this executable at /cmdreporter; repeatable.
        #[arg(long, value_name = "IMAGE", default_value = DEFAULT_REPORTER_IMAGE)]
        reporter_image: Vec<String>,
    },
}

fn out(bytes: &[u8]) {
    let mut o = std::io::stdout().lock();
    let _ = o.write_all(bytes);
    let _ = o.flush();
}

fn err(bytes: &[u8]) {
    let mut e = std::io::stderr().lock();
    let _ = e.write_all(bytes);
    let _ = e.flush();
}

/// A clap error on one line: the message without usage, tips and hints.
fn one_line(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let mut parts = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with("Usage:") || line.starts_with("For more information") {
            break;
        }
        if line.is_empty() || line.starts_with("tip:") {
            continue;
        }
        parts.push(line.strip_prefix("error: ").unwrap_or(line).to_owned());
    }
    parts.join(" ")
}

/// Whether `--output json` was asked for (before `--`), even on a command line that
/// does not parse.
fn wants_json(raw: &[String]) -> bool {
    let args: Vec<&str> = raw
        .iter()
        .map(String::as_str)
        .take_while(|a| *a != "--")
        .collect();
    args.contains(&"--output=json") || args.windows(2).any(|w| w == ["--output", "json"])
}

async fn main_async(raw: Vec<String>) -> i32 {
    // The in-pod subcommands share their parser with the scripted runtime.
    if matches!(raw.get(1).map(String::as_str), Some("report" | "install")) {
        return courier_main(&raw, &OsHost::new()).await;
    }
    let cli = match Cli::try_parse_from(&raw) {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            return match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                    let _ = e.print();
                    0
                }
                ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                    let _ = e.print();
                    EXIT_CMDREPORTER_ERROR
                }
                _ => {
                    let msg = format!("bad flag: {} (see --help)", one_line(&e));
                    if wants_json(&raw) {
                        out(output::error_json("bad_flag", &msg).as_bytes());
                    } else {
                        err(output::error_line(&msg).as_bytes());
                    }
                    EXIT_CMDREPORTER_ERROR
                }
            };
        }
    };
    match cli.command {
        Command::Run(a) => {
            let target = if a.fake {
                Target::Fake {
                    reporter_images: vec![a.reporter_image.clone()],
                }
            } else {
                Target::Kubeconfig {
                    path: a.kubeconfig,
                    context: a.context,
                }
            };
            let opts = RunOptions {
                target,
                namespace: a.namespace,
                image: a.image,
                reporter_image: a.reporter_image,
                transport: a.transport,
                name: a.name,
                timeout: a.timeout,
                service_account: a.service_account,
                argv: a.argv,
            };
            let sink: Option<Sink> = (!a.quiet && std::io::stderr().is_terminal())
                .then(|| Arc::new(|line: &str| eprintln!("cmdreporter: {line}")) as Sink);
            let summary = run(&opts, sink).await;
            let rendered = output::render(&summary, a.output);
            out(&rendered.stdout);
            err(&rendered.stderr);
            rendered.code
        }
        Command::Rbac(a) => {
            let opts = RbacOptions {
                transport: a.transport,
                namespace: a.namespace,
                service_account: a.service_account,
                pod_service_account: a.pod_service_account,
                cluster_wide: a.cluster_wide,
                errand_namespaces: a.errand_namespace,
            };
            match rbac::render(&opts) {
                Ok(yaml) => {
                    out(yaml.as_bytes());
                    0
                }
                Err(e) => {
                    err(output::error_line(&e.to_string()).as_bytes());
                    EXIT_CMDREPORTER_ERROR
                }
            }
        }
        Command::FakeCluster(FakeClusterCommand::Serve {
            addr,
            kubeconfig_out,
            unpullable_image,
            reporter_image,
        }) => {
            let opts = ServeOptions {
                addr,
                kubeconfig_out,
                unpullable_images: unpullable_image,
                reporter_images: reporter_image,
            };
            serve_until_interrupted(&opts).await
        }
        Command::Report { .. } | Command::Install { .. } => EXIT_CMDREPORTER_ERROR,
    }
}

async fn serve_until_interrupted(opts: &ServeOptions) -> i32 {
    use tokio::signal::unix::{SignalKind, signal};
    let (mut int, mut term) = match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(i), Ok(t)) => (i, t),
        (Err(e), _) | (_, Err(e)) => {
            err(output::error_line(&format!("cannot handle signals: {e}")).as_bytes());
            return EXIT_CMDREPORTER_ERROR;
        }
    };
    let serving = match serve::start(opts).await {
        Ok(s) => s,
        Err(e) => {
            err(output::error_line(&e.to_string()).as_bytes());
            return EXIT_CMDREPORTER_ERROR;
        }
    };
    let mut text = format!("serving the fake cluster at {}\n", serving.served.url());
    if let Some(path) = &opts.kubeconfig_out {
        text.push_str(&format!(
            "kubeconfig written to {} (try: KUBECONFIG={} kubectl get namespaces)\n",
            path.display(),
            path.display()
        ));
    }
    out(text.as_bytes());
    err(b"containers run as local processes; press Ctrl-C to stop\n");
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
    drop(serving);
    0
}

fn main() {
    // Logs only when asked for (CMDREPORTER_LOG=debug): stderr carries the command's own.
    let filter = tracing_subscriber::EnvFilter::try_from_env("CMDREPORTER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("off"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
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
    let code = rt.block_on(main_async(raw));
    rt.shutdown_timeout(Duration::from_secs(1));
    std::process::exit(code);
}
