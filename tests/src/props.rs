//! Pieces of the property tests: reporter image variants (a courier with a small log
//! capacity, one that lingers after delivering, an install step that fails) and the
//! record of which pod ran which command.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cmdreporter_core::courier::{self, CourierHost};
use cmdreporter_core::job::{REPORTER_BINARY, TERMINATION_MESSAGE_PATH, env};
use cmdreporter_fake_cluster::ScriptedImage;
use cmdreporter_fake_cluster::runtime::{Exit, ProgramContext};
use cmdreporter_k8s_logs::send::{Compression, EncodeOptions};

use crate::ScriptedHost;

/// A reporter image whose courier, for `--transport logs`, fits its report into
/// `capacity` payload bytes instead of the default (about 7.4 MiB), so that output beyond
/// the log's capacity stays small enough for many cases. Everything else (install, the
/// ConfigMap transport) is the real courier entry point.
pub fn small_log_reporter_image(capacity: u64) -> ScriptedImage {
    ScriptedImage::new().program(REPORTER_BINARY, move |ctx: ProgramContext| async move {
        let argv = ctx.argv.clone();
        let host = ScriptedHost::new(ctx);
        let logs_report = argv.get(1).map(String::as_str) == Some("report")
            && argv
                .windows(2)
                .any(|w| w[0] == "--transport" && w[1] == cmdreporter_k8s_logs::TRANSPORT);
        if !logs_report {
            return Exit::Code(cmdreporter_cli::courier_main(&argv, &host).await);
        }
        let run_id = argv
            .windows(2)
            .find(|w| w[0] == "--run-id")
            .map(|w| w[1].clone())
            .unwrap_or_default();
        let command: Vec<String> = argv
            .iter()
            .skip_while(|a| *a != "--")
            .skip(1)
            .cloned()
            .collect();
        let termination_log = host
            .env(env::TERMINATION_LOG)
            .unwrap_or_else(|| TERMINATION_MESSAGE_PATH.to_owned());
        let delivery = cmdreporter_k8s_logs::LogsDelivery::new().options(EncodeOptions {
            capacity,
            compression: Compression::Auto,
        });
        Exit::Code(courier::report(&host, &delivery, &run_id, &command, &termination_log).await)
    })
}

/// The real courier, whose container stays `linger` after it delivered (so its pod ends
/// the Job that much later): a second pod of a Job that reports first without ending the
/// Job before the watched pod reports.
pub fn lingering_reporter_image(linger: Duration) -> ScriptedImage {
    ScriptedImage::new().program(REPORTER_BINARY, move |ctx: ProgramContext| async move {
        let argv = ctx.argv.clone();
        let host = ScriptedHost::new(ctx);
        let code = cmdreporter_cli::courier_main(&argv, &host).await;
        if argv.get(1).map(String::as_str) == Some("report") {
            tokio::time::sleep(linger).await;
        }
        Exit::Code(code)
    })
}

/// A reporter image whose install step (the init container) fails with `code` and says
/// why in its termination message.
pub fn failing_reporter_image(code: i32) -> ScriptedImage {
    ScriptedImage::new().program(REPORTER_BINARY, move |ctx: ProgramContext| async move {
        let path = ctx.termination_message_path.clone();
        let msg = format!("cmdreporter: install failed on purpose ({code})");
        let _ = ctx.write_file(&path, msg.as_bytes());
        ctx.write_stderr(msg.as_bytes()).await;
        Exit::Code(code)
    })
}

/// Which commands ran in which pod: pod uid (from the courier's environment) to the
/// tokens of the commands started there, in order.
#[derive(Clone, Default)]
pub struct Invocations(Arc<Mutex<BTreeMap<String, Vec<String>>>>);

impl Invocations {
    /// Records that the command with `token` started in the program's pod.
    pub fn record(&self, ctx: &ProgramContext, token: &str) {
        let pod = ctx.env.get(env::POD_UID).cloned().unwrap_or_default();
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(pod)
            .or_default()
            .push(token.to_owned());
    }

    /// Every pod that ran a command more than once, with the tokens it ran.
    pub fn repeated(&self) -> Vec<(String, Vec<String>)> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(_, t)| t.len() > 1)
            .map(|(p, t)| (p.clone(), t.clone()))
            .collect()
    }

    /// How many times the command with `token` started, in any pod.
    pub fn count(&self, token: &str) -> usize {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .flatten()
            .filter(|t| *t == token)
            .count()
    }
}
