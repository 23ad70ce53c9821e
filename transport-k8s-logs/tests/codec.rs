//! The frame codec: what the courier prints and what the operator's reader makes of it,
//! including logs damaged the ways real logs are.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use cmdreporter_core::{Captured, ExitStatus, Omission, Report, ReportedExit};
use cmdreporter_k8s_logs::frame::{CHUNK_BYTES, Encoding};
use cmdreporter_k8s_logs::reader::{Expected, ReadLimits, read_report};
use cmdreporter_k8s_logs::send::{Compression, EncodeOptions, encode_frame};
use cmdreporter_k8s_logs::{ReadError, TRANSPORT};
use futures::executor::block_on;
use rand::{RngCore, SeedableRng};

fn report(run: &str, stdout: Vec<u8>) -> Report {
    Report {
        schema_version: "1.0".into(),
        run_id: run.into(),
        pod_uid: "pod-uid-1".into(),
        exit: ReportedExit::Exited(ExitStatus::Code(3)),
        stdout: Captured::complete(stdout),
        stderr: Captured {
            data: b"err".to_vec(),
            total_bytes: 9,
            omitted: Some(Omission { at: 1, bytes: 6 }),
        },
    }
}

fn random(n: usize, seed: u64) -> Vec<u8> {
    let mut v = vec![0u8; n];
    rand::rngs::StdRng::seed_from_u64(seed).fill_bytes(&mut v);
    v
}

fn frame(r: &Report, compression: Compression) -> Vec<u8> {
    let opts = EncodeOptions {
        compression,
        ..Default::default()
    };
    encode_frame(r, &opts).unwrap().to_bytes()
}

fn expect(run: &str) -> Expected {
    Expected {
        run_id: run.into(),
        pod_uid: Some("pod-uid-1".into()),
    }
}

/// Reads `log` through a buffer of `buf` bytes, so lines straddle reads.
fn read_with(log: &[u8], run: &str, limits: ReadLimits, buf: usize) -> Result<Report, ReadError> {
    block_on(read_report(
        futures::io::BufReader::with_capacity(buf, log),
        &expect(run),
        &limits,
    ))
}

fn read(log: &[u8], run: &str) -> Result<Report, ReadError> {
    read_with(log, run, ReadLimits::default(), 8 * 1024)
}

#[test]
fn round_trips_binary_output_through_small_reads() {
    for (i, out) in [
        b"\xff\xfe\x00".to_vec(),
        Vec::new(),
        random(CHUNK_BYTES * 3, 1),
        random(CHUNK_BYTES * 3 - 40, 2),
    ]
    .into_iter()
    .enumerate()
    {
        let r = report("run1", out);
        let log = frame(&r, Compression::Never);
        assert!(log.starts_with(b"\ncmdreporter:v1:begin run=run1 pod=pod-uid-1 enc=identity "));
        assert_eq!(
            read_with(&log, "run1", ReadLimits::default(), 5).unwrap(),
            r,
            "case {i}"
        );
    }
    assert_eq!(TRANSPORT, "logs");
}

#[test]
fn compressed_round_trip_and_the_choice_to_compress() {
    let text = report(
        "run1",
        b"ceph version 18.2.0 reef (stable)\n".repeat(20_000),
    );
    let log = frame(&text, Compression::Auto);
    assert!(String::from_utf8_lossy(&log[..200]).contains("enc=deflate"));
    assert!(log.len() < text.stdout.data.len() / 10);
    assert_eq!(read(&log, "run1").unwrap(), text);
    // Random bytes do not compress: sent as is.
    let noise = report("run1", random(100_000, 3));
    let log = frame(&noise, Compression::Auto);
    assert!(String::from_utf8_lossy(&log[..200]).contains("enc=identity"));
    assert_eq!(read(&log, "run1").unwrap(), noise);
}

#[test]
fn foreign_lines_before_between_and_after_frames_are_skipped() {
    let r = report("run1", random(CHUNK_BYTES * 2 + 5, 4));
    let other = report("zzz", b"stale".to_vec());
    let mut log = b"partial line without newline".to_vec();
    log.extend(frame(&other, Compression::Never));
    log.extend(b"cmdreporter: a warning of the courier\n\n   \ncmdreporter:v1 not a frame line\n");
    let ours = frame(&r, Compression::Never);
    // A warning line in the middle of our frame too.
    let cut = ours
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .nth(3)
        .unwrap()
        .0
        + 1;
    log.extend(&ours[..cut]);
    log.extend(b"W0101 00:00:00 some runtime noise\n");
    log.extend(&ours[cut..]);
    log.extend(b"trailing output\n");
    assert_eq!(read(&log, "run1").unwrap(), r);
}

#[test]
fn one_flipped_character_is_corrupt() {
    let r = report("run1", random(CHUNK_BYTES * 2, 5));
    let log = frame(&r, Compression::Never);
    let second_data_line = log
        .windows(17)
        .position(|w| w == b"cmdreporter:v1:1:")
        .unwrap();
    for offset in [17, 100, 2000] {
        let mut bad = log.clone();
        let at = second_data_line + offset;
        bad[at] = if bad[at] == b'A' { b'B' } else { b'A' };
        match read(&bad, "run1") {
            Err(ReadError::Corrupt(m)) => assert!(m.contains("checksum"), "{m}"),
            other => panic!("offset {offset}: {other:?}"),
        }
    }
    // A compressed frame too (the inflater or the checksum notices).
    let text = report("run1", b"abc\n".repeat(50_000));
    let mut bad = frame(&text, Compression::Always);
    let at = bad
        .windows(17)
        .position(|w| w == b"cmdreporter:v1:0:")
        .unwrap()
        + 60;
    bad[at] = if bad[at] == b'A' { b'B' } else { b'A' };
    assert!(matches!(read(&bad, "run1"), Err(ReadError::Corrupt(_))));
}

#[test]
fn sequence_errors_are_corrupt() {
    let r = report("run1", random(CHUNK_BYTES * 3, 6));
    let log = frame(&r, Compression::Never);
    let lines: Vec<&[u8]> = log.split_inclusive(|b| *b == b'\n').collect();
    // lines: "\n", header, data 0..=3, end.
    let mut swapped = lines.clone();
    swapped.swap(3, 4);
    let mut dropped = lines.clone();
    dropped.remove(3);
    let mut doubled = lines.clone();
    doubled.insert(3, lines[3]);
    for (name, l) in [
        ("swapped", swapped),
        ("dropped", dropped),
        ("doubled", doubled),
    ] {
        match read(&l.concat(), "run1") {
            Err(ReadError::Corrupt(m)) => assert!(m.contains("sequence"), "{name}: {m}"),
            other => panic!("{name}: {other:?}"),
        }
    }
}

#[test]
fn a_header_without_its_body_is_truncated() {
    let r = report("run1", random(CHUNK_BYTES * 4, 7));
    let log = frame(&r, Compression::Never);
    let lines: Vec<&[u8]> = log.split_inclusive(|b| *b == b'\n').collect();
    // Cut after two data lines (the courier was killed, or the log was cut).
    assert!(matches!(
        read(&lines[..4].concat(), "run1"),
        Err(ReadError::Truncated(_))
    ));
    // Rotation: the kubelet serves only the newest file, the header is gone.
    match read(&lines[4..].concat(), "run1") {
        Err(ReadError::Truncated(m)) => assert!(m.contains("rotated"), "{m}"),
        other => panic!("{other:?}"),
    }
    // A log with nothing of a frame.
    assert!(matches!(
        read(b"hello\nworld\n", "run1"),
        Err(ReadError::NoReport)
    ));
}

#[test]
fn frames_of_another_run_or_pod_are_refused() {
    let theirs = frame(&report("old", b"stale".to_vec()), Compression::Never);
    match read(&theirs, "run1") {
        Err(ReadError::OtherRun {
            found_run,
            expected_run,
            ..
        }) => assert_eq!((found_run.as_str(), expected_run.as_str()), ("old", "run1")),
        other => panic!("{other:?}"),
    }
    let mut other_pod = report("run1", b"x".to_vec());
    other_pod.pod_uid = "pod-uid-2".into();
    assert!(matches!(
        read(&frame(&other_pod, Compression::Never), "run1"),
        Err(ReadError::OtherRun { .. })
    ));
    // A header that lies about the run of its payload is corrupt, not accepted.
    let forged = String::from_utf8(frame(&report("run2", b"x".to_vec()), Compression::Never))
        .unwrap()
        .replace("run=run2", "run=run1");
    assert!(matches!(
        read(forged.as_bytes(), "run1"),
        Err(ReadError::Corrupt(_))
    ));
}

#[test]
fn oversized_frames_are_too_large_before_any_allocation() {
    let r = report("run1", random(100_000, 8));
    let log = frame(&r, Compression::Never);
    let small = ReadLimits {
        max_payload: 50_000,
        ..Default::default()
    };
    match read_with(&log, "run1", small, 8192) {
        Err(ReadError::TooLarge { what, size, limit }) => {
            assert_eq!(what, "payload");
            assert!(size > 100_000);
            assert_eq!(limit, 50_000);
        }
        other => panic!("{other:?}"),
    }
    // A compressed frame whose inflated size is over the cap.
    let zeros = report("run1", vec![0; 1_000_000]);
    let log = frame(&zeros, Compression::Always);
    let cap = ReadLimits {
        max_inflated: 100_000,
        ..Default::default()
    };
    assert!(matches!(
        read_with(&log, "run1", cap, 8192),
        Err(ReadError::TooLarge {
            what: "inflated payload",
            ..
        })
    ));
    // A frame that declares less than it inflates to is stopped at the declared size.
    let lie = String::from_utf8(log)
        .unwrap()
        .replace("raw=1000204 ", "raw=1000 ");
    assert!(lie.contains("raw=1000 "), "{}", &lie[..200]);
    assert!(matches!(
        read(lie.as_bytes(), "run1"),
        Err(ReadError::Corrupt(_))
    ));
}

#[test]
fn output_over_the_capacity_is_trimmed_and_says_so() {
    let opts = EncodeOptions {
        capacity: 20_000,
        compression: Compression::Auto,
    };
    let r = report("run1", random(50_000, 9));
    let f = encode_frame(&r, &opts).unwrap();
    assert!(f.trimmed());
    assert!(f.header().len <= 20_000);
    assert_eq!(f.header().encoding, Encoding::Identity);
    let got = read(&f.to_bytes(), "run1").unwrap();
    assert_eq!(got.stdout.total_bytes, 50_000);
    let gap = got.stdout.omitted.unwrap();
    assert_eq!(gap.bytes + got.stdout.data.len() as u64, 50_000);
    assert_eq!(
        &got.stdout.data[..gap.at as usize],
        &r.stdout.data[..gap.at as usize]
    );
    assert!(r.stdout.data.ends_with(&got.stdout.data[gap.at as usize..]));
    // Compressible output over the raw capacity fits once deflated, untrimmed.
    let text = report("run1", b"0123456789abcdef".repeat(10_000));
    let f = encode_frame(&text, &opts).unwrap();
    assert!(!f.trimmed());
    assert_eq!(read(&f.to_bytes(), "run1").unwrap(), text);
}

#[test]
fn six_mib_of_random_bytes_round_trip_byte_exact() {
    let r = report("run1", random(6 * 1024 * 1024, 10));
    let log = frame(&r, Compression::Auto);
    // base64 and line overhead: about 4/3, under the 10 MiB log file.
    assert!(log.len() < 10 * 1024 * 1024 - 64 * 1024, "{}", log.len());
    let got = read(&log, "run1").unwrap();
    assert!(got.stdout.data == r.stdout.data, "stdout differs");
    assert_eq!(got, r);
}

#[test]
fn another_frame_version_is_unsupported() {
    let log = b"\ncmdreporter:v2:begin run=run1 pod=pod-uid-1 whatever\n".to_vec();
    assert!(matches!(
        read(&log, "run1"),
        Err(ReadError::Unsupported { .. })
    ));
}
