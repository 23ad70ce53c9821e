//! Name validation as the API server applies it.

use crate::resources::ResourceDef;
use crate::status::{ApiError, FieldError};

const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

/// Whether `s` is a DNS-1123 label (at most 63 characters, no dots).
pub fn is_dns1123_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// Whether `s` is a DNS-1123 subdomain (at most 253 characters).
pub fn is_dns1123_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_dns1123_label)
}

/// Whether `s` is a valid label value (empty, or at most 63 characters of `[A-Za-z0-9-_.]`
/// starting and ending with an alphanumeric).
pub fn is_label_value(s: &str) -> bool {
    s.is_empty()
        || (s.len() <= 63
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            && s.as_bytes()[0].is_ascii_alphanumeric()
            && s.as_bytes()[s.len() - 1].is_ascii_alphanumeric())
}

/// Validates an object name for its resource: 422 Invalid naming `metadata.name` otherwise.
pub fn validate_name(def: &ResourceDef, name: &str) -> Result<(), ApiError> {
    let label_only = def.plural == "namespaces";
    let mut causes = Vec::new();
    if label_only {
        if !is_dns1123_label(name) {
            causes.push(FieldError::invalid("metadata.name", name, LABEL_MSG));
        }
    } else if !is_dns1123_subdomain(name) {
        causes.push(FieldError::invalid("metadata.name", name, SUBDOMAIN_MSG));
    }
    if causes.is_empty() && def.name_is_label && !label_only && name.len() > 63 {
        causes.push(FieldError::invalid(
            "metadata.name",
            name,
            "must be no more than 63 characters",
        ));
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(def, name, causes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::well_known;

    #[test]
    fn names_follow_dns_1123() {
        assert!(is_dns1123_subdomain("a.b-c"));
        assert!(!is_dns1123_subdomain("Bad_Name"));
        assert!(!is_dns1123_label("a.b"));
        assert!(is_label_value("A_b.c-9"));
        assert!(!is_label_value("-a"));
    }

    #[test]
    fn job_names_are_label_values() {
        let long = format!("{}.{}", "a".repeat(40), "b".repeat(40));
        let err = validate_name(well_known::jobs(), &long).unwrap_err();
        assert_eq!(err.code, 422);
        assert!(err.message.contains("must be no more than 63 characters"));
        assert!(validate_name(well_known::configmaps(), &long).is_ok());
    }

    #[test]
    fn invalid_message_matches_the_real_server() {
        let err = validate_name(well_known::configmaps(), "Bad_Name").unwrap_err();
        assert!(err.message.starts_with(
            "ConfigMap \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain"
        ));
        assert_eq!(err.details.unwrap()["causes"][0]["field"], "metadata.name");
    }
}
