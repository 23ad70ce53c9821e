//! The scripted command: its token, its bytes, and the test image that runs it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cmdreporter_core::ExitStatus;
use cmdreporter_fake_cluster::ScriptedImage;
use cmdreporter_fake_cluster::runtime::{Exit, ProgramContext};
use cmdreporter_tests::props::Invocations;

use crate::TOKEN_LEN;
use crate::model::{Command, Out};

pub(crate) fn token(seed: u64, i: usize) -> String {
    let t = format!("<{:08x}-r{i:02}>", seed as u32);
    assert_eq!(t.len(), TOKEN_LEN);
    t
}

/// The bytes a stream carries: the token, then `len` bytes of text or of binary noise.
pub(crate) fn stream_bytes(token: &str, out: Option<Out>, salt: u64) -> Vec<u8> {
    let Some(out) = out else { return Vec::new() };
    let mut data = token.as_bytes().to_vec();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15 ^ salt ^ (out.len as u64);
    data.extend((0..out.len).map(|i| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if out.binary {
            // Sure not to be UTF-8: a 0xff now and then.
            if i % 97 == 0 { 0xff } else { (x >> 32) as u8 }
        } else if i % 61 == 60 {
            b'\n'
        } else {
            b'a' + (x % 26) as u8
        }
    }));
    data
}

pub(crate) struct Script {
    pub(crate) token: String,
    pub(crate) command: Command,
    pub(crate) stdout: Vec<u8>,
    pub(crate) stderr: Vec<u8>,
}

pub(crate) type Scripts = Arc<Mutex<Vec<Arc<Script>>>>;

/// The test image: `/bin/cmd <token>` does what the run's script says.
pub(crate) fn tools(scripts: Scripts, invocations: Invocations) -> ScriptedImage {
    ScriptedImage::new().program("/bin/cmd", move |ctx: ProgramContext| {
        let scripts = scripts.clone();
        let invocations = invocations.clone();
        async move {
            let token = ctx.argv.get(1).cloned().unwrap_or_default();
            invocations.record(&ctx, &token);
            let script = scripts
                .lock()
                .unwrap()
                .iter()
                .find(|s| s.token == token)
                .cloned()
                .expect("a script for every token");
            let c = &script.command;
            let delay = Duration::from_secs(c.delay);
            if c.sleep_first {
                tokio::time::sleep(delay).await;
            }
            let chunk = c.chunk.max(1);
            let mut out = script.stdout.chunks(chunk);
            let mut err = script.stderr.chunks(chunk);
            loop {
                let (o, e) = (out.next(), err.next());
                if o.is_none() && e.is_none() {
                    break;
                }
                if let Some(o) = o {
                    ctx.write_stdout(o).await;
                }
                if let Some(e) = e {
                    ctx.write_stderr(e).await;
                }
            }
            if !c.sleep_first {
                tokio::time::sleep(delay).await;
            }
            match c.exit {
                ExitStatus::Code(code) => Exit::Code(code),
                ExitStatus::Signal(s) => Exit::Signal(s),
            }
        }
    })
}
