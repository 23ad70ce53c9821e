//! Routing: which resource, namespace, name and subresource a request path names, or which
//! discovery document; and the two shapes of 404 the real server gives a path it does not serve.

use crate::json::Value;

use crate::discovery;
use crate::resources::{Registry, ResourceRef};

/// Where a request goes.
#[derive(Debug)]
pub(super) struct Target {
    pub(super) def: ResourceRef,
    pub(super) namespace: Option<String>,
    pub(super) name: Option<String>,
    pub(super) subresource: Option<String>,
}

pub(super) enum Route {
    Version,
    ApiVersions,
    ApiGroups,
    ResourceList(String),
    Resource(Target),
    OpenApiRoot,
    OpenApi(Value),
    /// A path inside a served group version that names nothing: a `Status` 404.
    NotFoundStatus,
}

/// Routes a path. `None` is a path outside every served group version, which the real
/// server answers with a plain-text `404 page not found`.
pub(super) fn route(registry: &Registry, path: &str) -> Option<Route> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match segs.as_slice() {
        ["version"] => return Some(Route::Version),
        ["api"] => return Some(Route::ApiVersions),
        ["apis"] => return Some(Route::ApiGroups),
        ["openapi", "v3"] => return Some(Route::OpenApiRoot),
        ["openapi", "v3", gv @ ..] => {
            return discovery::openapi_v3_group_version(registry, &gv.join("/"))
                .map(Route::OpenApi);
        }
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return None,
    };
    let gv = if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    };
    if !discovery::serves_group_version(registry, &gv) {
        return None;
    }
    Some(route_resource(registry, group, version, gv, rest).unwrap_or(Route::NotFoundStatus))
}

fn route_resource(
    registry: &Registry,
    group: &str,
    version: &str,
    gv: String,
    rest: &[&str],
) -> Option<Route> {
    let namespaced = |plural: &str| {
        registry
            .find(group, version, plural)
            .filter(|d| d.namespaced)
    };
    let (namespace, rest) = match rest {
        ["namespaces", ns, plural, more @ ..] if namespaced(plural).is_some() => (
            Some((*ns).to_owned()),
            std::iter::once(*plural)
                .chain(more.iter().copied())
                .collect::<Vec<_>>(),
        ),
        _ => (None, rest.to_vec()),
    };
    let (plural, name, sub) = match rest.as_slice() {
        [] => return Some(Route::ResourceList(gv)),
        [p] => (*p, None, None),
        [p, n] => (*p, Some(*n), None),
        [p, n, s] => (*p, Some(*n), Some(*s)),
        _ => return None,
    };
    let def = registry.find(group, version, plural)?;
    if let Some(s) = sub
        && !def.has_subresource(s)
    {
        return None;
    }
    Some(Route::Resource(Target {
        def,
        namespace,
        name: name.map(str::to_owned),
        subresource: sub.map(str::to_owned),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_namespaced_and_cluster_paths() {
        let Some(Route::Resource(t)) =
            route(&Registry::default(), "/api/v1/namespaces/ns1/configmaps/cm")
        else {
            panic!("no route")
        };
        assert_eq!(
            (
                t.def.plural.as_str(),
                t.namespace.as_deref(),
                t.name.as_deref()
            ),
            ("configmaps", Some("ns1"), Some("cm"))
        );
        let Some(Route::Resource(t)) = route(&Registry::default(), "/api/v1/namespaces/ns1") else {
            panic!()
        };
        assert_eq!(
            (t.def.plural.as_str(), t.name.as_deref()),
            ("namespaces", Some("ns1"))
        );
        let Some(Route::Resource(t)) = route(&Registry::default(), "/api/v1/namespaces/ns1/status")
        else {
            panic!()
        };
        assert_eq!(t.subresource.as_deref(), Some("status"));
        let Some(Route::Resource(t)) = route(&Registry::default(), "/apis/batch/v1/jobs") else {
            panic!()
        };
        assert!(t.namespace.is_none() && t.name.is_none());
    }

    #[test]
    fn unknown_paths_are_404_in_the_real_server_shapes() {
        // Outside every served group version: plain text.
        assert!(route(&Registry::default(), "/apis/batch/v2/jobs").is_none());
        assert!(route(&Registry::default(), "/apis/example.com/v1").is_none());
        assert!(route(&Registry::default(), "/healthz/x").is_none());
        // Inside a served group version: a Status.
        assert!(matches!(
            route(
                &Registry::default(),
                "/api/v1/namespaces/a/configmaps/b/log"
            ),
            Some(Route::NotFoundStatus)
        ));
        assert!(matches!(
            route(&Registry::default(), "/api/v1/widgets"),
            Some(Route::NotFoundStatus)
        ));
        assert!(matches!(
            route(&Registry::default(), "/openapi/v3/apis/batch/v1"),
            Some(Route::OpenApi(_))
        ));
    }
}
