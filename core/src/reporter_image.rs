//! The default reporter image, pinned by digest per release.
//!
//! A release of this crate names the reporter image built from the same source, by tag
//! and digest: `ghcr.io/cmdreporter/cmdreporter:<version>@sha256:<digest>`, so that a Job
//! never runs a courier other than the one this operator was built against, whatever the
//! tag points at later. The digest exists only once the image is pushed, so the release
//! process writes the whole reference into [`RELEASE_REPORTER_IMAGE`] (one line of this
//! file) before publishing. A binary's build can instead set `CMDREPORTER_REPORTER_IMAGE`
//! at compile time (an image of its own, pinned the same way). Both are checked when
//! compiling: a reference that is not pinned by a sha256 digest, or a release reference
//! whose tag is not this crate's version, fails the build, and so does a build with
//! `CMDREPORTER_RELEASE` set but no digest.
//!
//! Without a digest (a development build: no image is published from this repository
//! yet), the default is the tag alone, [`REPORTER_TAG_REFERENCE`]; the first Job created
//! with it logs a warning. A request overrides the image with
//! [`Request::reporter_image`](crate::Request::reporter_image).

/// The reporter image's repository.
pub const REPORTER_REPOSITORY: &str = "ghcr.io/cmdreporter/cmdreporter";

/// The reporter image of this version, by tag only.
pub const REPORTER_TAG_REFERENCE: &str = concat!(
    "ghcr.io/cmdreporter/cmdreporter:",
    env!("CARGO_PKG_VERSION")
);

/// The released reporter image by tag and digest, written by the release process:
/// `Some("ghcr.io/cmdreporter/cmdreporter:<version>@sha256:<64 hex digits>")`.
pub const RELEASE_REPORTER_IMAGE: Option<&str> = None;

/// The reporter image used when a request names none: `CMDREPORTER_REPORTER_IMAGE` at
/// compile time, else the release's pinned reference, else the tag alone.
pub const DEFAULT_REPORTER_IMAGE: &str = match option_env!("CMDREPORTER_REPORTER_IMAGE") {
    Some(image) => image,
    None => match RELEASE_REPORTER_IMAGE {
        Some(image) => image,
        None => REPORTER_TAG_REFERENCE,
    },
};

/// Whether [`DEFAULT_REPORTER_IMAGE`] is pinned by digest.
pub const DEFAULT_IS_PINNED: bool = is_pinned(DEFAULT_REPORTER_IMAGE);

const _: () = {
    if let Some(image) = option_env!("CMDREPORTER_REPORTER_IMAGE") {
        assert!(
            is_pinned(image),
            "CMDREPORTER_REPORTER_IMAGE must end in @sha256:<64 lowercase hex digits>"
        );
    }
    if let Some(image) = RELEASE_REPORTER_IMAGE {
        assert!(
            is_pinned(image) && starts_with(image, REPORTER_TAG_REFERENCE),
            "RELEASE_REPORTER_IMAGE must be REPORTER_TAG_REFERENCE@sha256:<64 lowercase hex digits>"
        );
    }
    if option_env!("CMDREPORTER_RELEASE").is_some() {
        assert!(
            DEFAULT_IS_PINNED,
            "a release build needs RELEASE_REPORTER_IMAGE or CMDREPORTER_REPORTER_IMAGE pinned by digest"
        );
    }
};

const fn starts_with(s: &str, prefix: &str) -> bool {
    let (s, p) = (s.as_bytes(), prefix.as_bytes());
    if s.len() < p.len() {
        return false;
    }
    let mut i = 0;
    while i < p.len() {
        if s[i] != p[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Whether `image` ends in `@sha256:` and 64 lowercase hex digits, the form a registry
/// gives a digest in.
pub const fn is_pinned(image: &str) -> bool {
    const SUFFIX: &[u8] = b"@sha256:";
    let b = image.as_bytes();
    let hex_len = 64;
    if b.len() < SUFFIX.len() + hex_len + 1 {
        return false;
    }
    let at = b.len() - hex_len - SUFFIX.len();
    let mut i = 0;
    while i < SUFFIX.len() {
        if b[at + i] != SUFFIX[i] {
            return false;
        }
        i += 1;
    }
    let mut i = b.len() - hex_len;
    while i < b.len() {
        if !matches!(b[i], b'0'..=b'9' | b'a'..=b'f') {
            return false;
        }
        i += 1;
    }
    true
}

/// The warning a Job with `image` as its reporter deserves: `Some` when it is the default
/// and the default is not pinned.
pub fn unpinned_default_warning(image: &str) -> Option<String> {
    (image == DEFAULT_REPORTER_IMAGE && !DEFAULT_IS_PINNED).then(|| {
        format!(
            "the default reporter image {image} is not pinned by digest (this build carries no \
             release digest): the courier is whatever the tag points at; pin it with \
             Request::reporter_image(\"...@sha256:...\")"
        )
    })
}

/// Logs [`unpinned_default_warning`] once per process.
pub(crate) fn warn_if_unpinned_default(image: &str) {
    static WARNED: std::sync::Once = std::sync::Once::new();
    if let Some(message) = unpinned_default_warning(image) {
        WARNED.call_once(|| tracing::warn!("{message}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn only_a_full_sha256_digest_pins() {
        assert!(is_pinned(&format!("{REPORTER_TAG_REFERENCE}@{DIGEST}")));
        assert!(is_pinned(&format!("{REPORTER_REPOSITORY}@{DIGEST}")));
        assert!(!is_pinned(REPORTER_TAG_REFERENCE));
        assert!(!is_pinned(&format!("{REPORTER_TAG_REFERENCE}@sha256:0123")));
        assert!(!is_pinned(&format!(
            "{REPORTER_TAG_REFERENCE}@{}",
            DIGEST.to_uppercase()
        )));
        assert!(!is_pinned(&format!("x@sha512:{}", &DIGEST[7..])));
        assert!(!is_pinned(&DIGEST[6..]));
    }

    #[test]
    fn the_default_is_this_versions_image_and_warned_about_when_unpinned() {
        assert!(starts_with(DEFAULT_REPORTER_IMAGE, REPORTER_REPOSITORY));
        assert!(crate::request::is_image_reference(DEFAULT_REPORTER_IMAGE));
        let warning = unpinned_default_warning(DEFAULT_REPORTER_IMAGE);
        if DEFAULT_IS_PINNED {
            assert!(warning.is_none());
        } else {
            // A development build: no digest was set, so the tag alone, and a warning.
            assert_eq!(DEFAULT_REPORTER_IMAGE, REPORTER_TAG_REFERENCE);
            assert!(warning.is_some_and(|w| w.contains("not pinned by digest")));
        }
        // An image the caller chose is the caller's: no warning.
        assert_eq!(
            unpinned_default_warning("registry.example/cmdreporter:dev"),
            None
        );
    }
}
