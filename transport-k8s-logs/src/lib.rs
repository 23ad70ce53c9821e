//! The pod-logs transport (not built yet): the courier will print a framed, checksummed,
//! run-id-tagged report on its own stdout, and the operator will read it with one GET of
//! the container's log. See issue 6 and `DESIGN.md`.
