//! API errors as the real API server writes them: `Status` objects with code, reason and details.

use crate::json::{Value, json};

use crate::resources::ResourceDef;

/// An error answer of the fake API server, rendered as a `Status` object.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code} {reason}: {message}")]
pub struct ApiError {
    /// HTTP status code.
    pub code: u16,
    /// Machine-readable reason (`NotFound`, `AlreadyExists`, ...).
    pub reason: String,
    /// Human-readable message, shaped as the real server shapes it.
    pub message: String,
    /// `details` of the Status, if any.
    pub details: Option<Value>,
}

impl ApiError {
    /// A bare error with code, reason and message.
    pub fn new(code: u16, reason: &str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason: reason.to_owned(),
            message: message.into(),
            details: None,
        }
    }

    fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    /// 404 NotFound for an object of a resource.
    pub fn not_found(def: &ResourceDef, name: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", def.qualified_plural()),
        )
        .with_details(def.details(name))
    }

    /// 404 NotFound for a namespace that does not exist (on create).
    pub fn namespace_not_found(ns: &str) -> Self {
        Self::new(404, "NotFound", format!("namespaces \"{ns}\" not found"))
            .with_details(json!({"name": ns, "kind": "namespaces"}))
    }

    /// 409 AlreadyExists.
    pub fn already_exists(def: &ResourceDef, name: &str) -> Self {
        Self::new(
            409,
            "AlreadyExists",
            format!("{} \"{name}\" already exists", def.qualified_plural()),
        )
        .with_details(def.details(name))
    }

    /// 409 Conflict on a stale resourceVersion or a failed precondition.
    pub fn conflict(def: &ResourceDef, name: &str, why: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": {why}",
                def.qualified_plural()
            ),
        )
        .with_details(def.details(name))
    }

    /// 409 Conflict for a stale resourceVersion, with the real server's wording.
    pub fn stale(def: &ResourceDef, name: &str) -> Self {
        Self::conflict(
            def,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// 422 Invalid with one cause per field.
    pub fn invalid(def: &ResourceDef, name: &str, causes: Vec<FieldError>) -> Self {
        let mut details = def.details(name);
        details["kind"] = json!(def.kind);
        Self::invalid_as(&format!("{} \"{name}\"", def.kind), details, &causes)
    }

    /// 422 Invalid of request options (`DeleteOptions`, ...): the real server names them
    /// as `DeleteOptions.meta.k8s.io ""`, with one cause per field.
    pub fn invalid_options(kind: &str, causes: Vec<FieldError>) -> Self {
        let details = json!({"group": "meta.k8s.io", "kind": kind});
        Self::invalid_as(&format!("{kind}.meta.k8s.io \"\""), details, &causes)
    }

    /// 422 Invalid of `subject` (the kind and name as the message writes them): the
    /// message lists the causes (in brackets when there are several), `details` gets them.
    fn invalid_as(subject: &str, mut details: Value, causes: &[FieldError]) -> Self {
        let summary: Vec<String> = causes.iter().map(FieldError::to_string).collect();
        let summary = match summary.as_slice() {
            [one] => one.clone(),
            _ => format!("[{}]", summary.join(", ")),
        };
        details["causes"] = Value::Array(
            causes
                .iter()
                .map(|c| json!({"reason": c.reason, "message": c.detail_message(), "field": c.field}))
                .collect(),
        );
        Self::new(422, "Invalid", format!("{subject} is invalid: {summary}")).with_details(details)
    }

    /// 400 BadRequest.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    /// 405 MethodNotAllowed.
    pub fn method_not_allowed() -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )
    }

    /// 404 for a path the server does not serve.
    pub fn path_not_found() -> Self {
        Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
        .with_details(json!({}))
    }

    /// 410 Expired for a resourceVersion older than the kept history.
    pub fn expired(requested: u64, oldest: u64) -> Self {
        Self::new(
            410,
            "Expired",
            format!("too old resource version: {requested} ({oldest})"),
        )
    }

    /// 500 InternalError.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "InternalError", message)
    }

    /// The `Status` object.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(details) = &self.details {
            status["details"] = details.clone();
        }
        status
    }
}

/// One invalid field of a 422 answer.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    /// Path of the field, e.g. `metadata.name`.
    pub field: String,
    /// `FieldValueInvalid`, `FieldValueRequired`, `FieldValueTooLong`, ...
    pub reason: &'static str,
    /// The offending value, quoted in the message.
    pub value: Option<String>,
    /// What is wrong.
    pub detail: String,
}

impl FieldError {
    /// `Invalid value: "<value>": <detail>`.
    pub fn invalid(field: &str, value: &str, detail: impl Into<String>) -> Self {
        Self {
            field: field.to_owned(),
            reason: "FieldValueInvalid",
            value: Some(value.to_owned()),
            detail: detail.into(),
        }
    }

    /// `Required value`.
    pub fn required(field: &str, detail: impl Into<String>) -> Self {
        Self {
            field: field.to_owned(),
            reason: "FieldValueRequired",
            value: None,
            detail: detail.into(),
        }
    }

    /// `Unsupported value`.
    pub fn not_supported(field: &str, value: &str, allowed: &[&str]) -> Self {
        let quoted: Vec<String> = allowed.iter().map(|a| format!("\"{a}\"")).collect();
        Self {
            field: field.to_owned(),
            reason: "FieldValueNotSupported",
            value: Some(value.to_owned()),
            detail: format!("supported values: {}", quoted.join(", ")),
        }
    }

    /// `Forbidden: <detail>`.
    pub fn forbidden(field: &str, detail: impl Into<String>) -> Self {
        Self {
            field: field.to_owned(),
            reason: "FieldValueForbidden",
            value: None,
            detail: detail.into(),
        }
    }

    /// `Too long: must have at most N bytes`.
    pub fn too_long(field: &str, max: usize) -> Self {
        Self {
            field: field.to_owned(),
            reason: "FieldValueTooLong",
            value: None,
            detail: format!("must have at most {max} bytes"),
        }
    }

    fn detail_message(&self) -> String {
        match (self.reason, &self.value) {
            ("FieldValueInvalid", Some(v)) => format!("Invalid value: \"{v}\": {}", self.detail),
            ("FieldValueNotSupported", Some(v)) => {
                format!("Unsupported value: \"{v}\": {}", self.detail)
            }
            ("FieldValueRequired", _) if self.detail.is_empty() => "Required value".to_owned(),
            ("FieldValueRequired", _) => format!("Required value: {}", self.detail),
            ("FieldValueTooLong", _) => format!("Too long: {}", self.detail),
            ("FieldValueForbidden", _) => format!("Forbidden: {}", self.detail),
            _ => self.detail.clone(),
        }
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.detail_message())
    }
}
