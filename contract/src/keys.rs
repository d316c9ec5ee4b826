//! Label, annotation and finalizer keys on Services, Nodes and the objects the
//! controller manages.

/// Prefix of every key this project owns.
pub const DOMAIN: &str = "svc-lb.tailscale.iptables.sh";

/// Node label that the default policy selects (`=true`) to run proxies on.
pub const DEPLOY_NODE_LABEL: &str = "svc-lb.tailscale.iptables.sh/deploy";

/// Service annotation: the Tailscale hostname to use.
pub const HOSTNAME_ANNOTATION: &str = "svc-lb.tailscale.iptables.sh/hostname";

/// Service annotation: comma-separated Tailscale tags (`tag:a,tag:b`).
pub const TAGS_ANNOTATION: &str = "svc-lb.tailscale.iptables.sh/tags";

/// Finalizer the controller keeps on Services it serves until teardown is done.
pub const SERVICE_FINALIZER: &str = "svc-lb.tailscale.iptables.sh/finalizer";

/// Annotation set on a Service together with [`SERVICE_FINALIZER`]: the
/// namespace of the controller installation that serves it, so two
/// installations (different classes, different namespaces) in one cluster
/// never tear down each other's Services, whose finalizer has one name.
pub const SERVED_BY_ANNOTATION: &str = "svc-lb.tailscale.iptables.sh/served-by";
/// Label on managed objects: namespace of the Service they serve.
pub const SERVICE_NAMESPACE_LABEL: &str = "svc-lb.tailscale.iptables.sh/service-namespace";

/// Label on managed objects: name of the Service they serve.
pub const SERVICE_NAME_LABEL: &str = "svc-lb.tailscale.iptables.sh/service-name";

/// Annotation on managed objects: uid of the Service they serve.
pub const SERVICE_UID_ANNOTATION: &str = "svc-lb.tailscale.iptables.sh/service-uid";

/// Standard label naming the manager of an object.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";

/// Value of [`MANAGED_BY_LABEL`] on every object this project creates.
pub const MANAGED_BY_VALUE: &str = "tailscale-svc-lb";

/// Standard label naming the role of an object within the application.
pub const COMPONENT_LABEL: &str = "app.kubernetes.io/component";

/// Value of [`COMPONENT_LABEL`] on the per-Service proxy objects.
pub const COMPONENT_PROXY: &str = "proxy";

/// Annotation on the state Secret: the controller asks the leader to log out
/// of the tailnet and stop (set when the Service goes away).
pub const DEPROVISION_ANNOTATION: &str = "svc-lb.tailscale.iptables.sh/deprovision";

/// Label keys a policy may not set on proxy pods, because the controller
/// relies on them to find its own objects.
pub const RESERVED_POD_LABELS: &[&str] = &[
    SERVICE_NAMESPACE_LABEL,
    SERVICE_NAME_LABEL,
    MANAGED_BY_LABEL,
    COMPONENT_LABEL,
];
