//! The same errand through each transport, chosen by name at run time: the operator side
//! is an `Arc<dyn ResultChannel>`, so switching is one line, and the Job tells its courier
//! which transport to use.
//!
//! ```sh
//! cargo run --example switch_transport                # every transport
//! cargo run --example switch_transport -- configmap   # one
//! ```
//!
//! Runs on the embedded fake cluster (process runtime); this example's executable is the
//! reporter image's `/cmdreporter`, so `main` also answers `report` and `install`.

use cmdreporter_cli::transport::{self, KNOWN};
use cmdreporter_cli::{OsHost, courier_main};
use cmdreporter_core::request::DEFAULT_REPORTER_IMAGE;
use cmdreporter_core::{JobRunner, Request, Runner};

async fn errand(name: &str) -> Result<String, Box<dyn std::error::Error>> {
    let cluster =
        cmdreporter_cli::cluster::start_fake(&[DEFAULT_REPORTER_IMAGE.into()], &[]).await?;
    let client = cluster.client();
    // The one line that picks the transport.
    let channel = transport::channel(name, client.clone())?;
    let runner = JobRunner::new(client, channel);
    let request = Request::new("busybox:stable", ["sh", "-c", "echo via $0", name]);
    let outcome = runner.run(request).await;
    runner.shutdown().await;
    let outcome = outcome?;
    Ok(format!(
        "{:?}, stdout {:?}, {} API requests",
        outcome.exit,
        String::from_utf8_lossy(&outcome.stdout.data),
        cluster.journal().len()
    ))
}

#[tokio::main]
async fn main() {
    let argv: Vec<String> = std::env::args().collect();
    if matches!(argv.get(1).map(String::as_str), Some("report" | "install")) {
        std::process::exit(courier_main(&argv, &OsHost::new()).await);
    }
    let names: Vec<&str> = match argv.get(1) {
        Some(n) => vec![n.as_str()],
        None => KNOWN.to_vec(),
    };
    let mut failed = false;
    for name in names {
        match errand(name).await {
            Ok(s) => println!("{name}: {s}"),
            Err(e) => {
                println!("{name}: failed: {e}");
                failed = true;
            }
        }
    }
    if failed {
        std::process::exit(1);
    }
}
