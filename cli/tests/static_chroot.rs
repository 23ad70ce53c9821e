//! The reporter image holds nothing but the static `cmdreporter` (`FROM scratch`). No
//! container engine runs here, so this proves the same thing with a chroot: the static
//! binary, alone in an otherwise empty directory (no libc, no shell, no /proc, no /dev),
//! runs `install` as the init container does, and `report` for the logs transport (which
//! needs no API) as the main container does. Building the static binary is part of the
//! test (dev profile, its own target directory); set CMDREPORTER_STATIC_BIN to use one
//! built already. The chroot needs root; elsewhere the test says so and skips that part.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use cmdreporter_core::{ExitStatus, ReportedExit};
use cmdreporter_k8s_logs::reader::Expected;
use cmdreporter_k8s_logs::{ReadLimits, read_report};
use common::{assert_code, cmdreporter, stderr};

#[test]
fn install_copies_itself_with_mode_0755() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("cmdreporter");
    let o = cmdreporter(&["install", dest.to_str().unwrap()]);
    assert_code(&o, 0);
    let mode = std::fs::metadata(&dest).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o755);
    assert_eq!(
        std::fs::read(&dest).unwrap(),
        std::fs::read(common::BIN).unwrap()
    );
    // The copy works.
    let o = Command::new(&dest).arg("--version").output().unwrap();
    assert_code(&o, 0);
}

/// Whether an ELF file asks for a dynamic loader (has a PT_INTERP program header).
fn has_interpreter(path: &Path) -> bool {
    let b = std::fs::read(path).unwrap();
    assert_eq!(&b[..4], b"\x7fELF", "not ELF");
    assert_eq!(b[4], 2, "not 64-bit");
    let u16at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(b[0x20..0x28].try_into().unwrap()) as usize;
    let (size, count) = (u16at(0x36), u16at(0x38));
    (0..count).any(|i| {
        let o = phoff + i * size;
        u32::from_le_bytes(b[o..o + 4].try_into().unwrap()) == 3
    })
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

/// The documented static build, in the dev profile and a target directory of its own.
fn static_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("CMDREPORTER_STATIC_BIN") {
        return PathBuf::from(p);
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("static");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(workspace)
        .args([
            "build",
            "--target",
            "x86_64-unknown-linux-gnu",
            "-p",
            "cmdreporter-cli",
            "--bin",
            "cmdreporter",
        ])
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .env("CARGO_TARGET_DIR", &target_dir)
        .status()
        .expect("cargo runs");
    assert!(status.success(), "the static build failed");
    target_dir.join("x86_64-unknown-linux-gnu/debug/cmdreporter")
}

#[test]
fn the_static_binary_installs_itself_in_an_empty_chroot() {
    if !cfg!(all(target_os = "linux", target_arch = "x86_64")) {
        eprintln!("skipped: the static build is documented for x86_64 Linux");
        return;
    }
    let bin = static_binary();
    assert!(
        !has_interpreter(&bin),
        "{} needs a dynamic loader",
        bin.display()
    );
    if !is_root() {
        eprintln!("skipped the chroot half: chroot needs root");
        return;
    }
    // Found before the environment is cleared for the chrooted program.
    let chroot = ["/usr/sbin/chroot", "/usr/bin/chroot", "/sbin/chroot"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("chroot (coreutils) is installed");
    let root = tempfile::tempdir().unwrap();
    let inside = root.path().join("cmdreporter");
    std::fs::copy(&bin, &inside).unwrap();
    std::fs::set_permissions(&inside, std::fs::Permissions::from_mode(0o755)).unwrap();
    let entries: Vec<_> = std::fs::read_dir(root.path()).unwrap().collect();
    assert_eq!(entries.len(), 1, "the binary alone");

    // The init container's step, with nothing else in the file system.
    let o = Command::new(chroot)
        .arg(root.path())
        .args(["/cmdreporter", "install", "/courier"])
        .env_clear()
        .output()
        .unwrap();
    assert_code(&o, 0);
    let copy = root.path().join("courier");
    assert_eq!(
        std::fs::metadata(&copy).unwrap().permissions().mode() & 0o777,
        0o755
    );
    assert_eq!(std::fs::read(&copy).unwrap(), std::fs::read(&bin).unwrap());

    // The main container's step with the logs transport: the copy runs a command (itself,
    // the only program there) and prints the framed report on its stdout.
    let o = Command::new(chroot)
        .arg(root.path())
        .args([
            "/courier",
            "report",
            "--transport",
            "logs",
            "--run-id",
            "r1",
            "--",
            "/courier",
            "--version",
        ])
        .env_clear()
        .env("CMDREPORTER_JOB_NAME", "errand-r1")
        .env("CMDREPORTER_JOB_UID", "job-uid-1")
        .env("CMDREPORTER_POD_UID", "pod-uid-1")
        .env("CMDREPORTER_NAMESPACE", "default")
        .output()
        .unwrap();
    assert_code(&o, 0);
    let expected = Expected {
        run_id: "r1".into(),
        pod_uid: Some("pod-uid-1".into()),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let report = rt
        .block_on(read_report(
            &o.stdout[..],
            &expected,
            &ReadLimits::default(),
        ))
        .unwrap_or_else(|e| panic!("{e}: {:?} / {}", o.stdout, stderr(&o)));
    assert_eq!(report.exit, ReportedExit::Exited(ExitStatus::Code(0)));
    assert!(
        report.stdout.data.starts_with(b"cmdreporter "),
        "{:?}",
        String::from_utf8_lossy(&report.stdout.data)
    );

    // Without its pod's environment it fails as it should: exit 2, the variable named.
    let o = Command::new(chroot)
        .arg(root.path())
        .args(["/courier", "report", "--run-id", "r1", "--", "/none"])
        .env_clear()
        .output()
        .unwrap();
    assert_code(&o, 2);
    assert!(
        stderr(&o).contains("environment variable CMDREPORTER_"),
        "{}",
        stderr(&o)
    );
}
