//! Bearer tokens and who they stand for, as the real server's token
//! authenticators decide it.
//!
//! - The admin token of the kubeconfig: user `kube-sim-admin` in
//!   `system:masters` (kubeadm's `kubernetes-admin` is in that group too).
//! - ServiceAccount tokens from TokenRequest (`POST …/serviceaccounts/NAME/token`).
//!   Real ones are JWTs; these are opaque random strings, which clients treat
//!   the same. As the real server's service-account authenticator does
//!   (`pkg/serviceaccount/claims.go`, `lookup`), a token is valid only until
//!   its expiry, while its ServiceAccount exists with the uid it was issued
//!   for, and, when bound to a Pod, while that Pod exists with its uid.
//!   Its user is `system:serviceaccount:<ns>:<name>` in the groups
//!   `system:serviceaccounts`, `system:serviceaccounts:<ns>` and
//!   `system:authenticated`; a Pod-bound token adds the `pod-name` and
//!   `pod-uid` extras.
//! - Tokens for any user and groups, as a static token file
//!   (`--token-auth-file`) gives them.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use crate::auth::UserInfo;

/// Group of the cluster's administrators: RBAC lets it do everything.
pub const MASTERS_GROUP: &str = "system:masters";
/// Group every authenticated user is in.
pub const AUTHENTICATED_GROUP: &str = "system:authenticated";
/// Group of requests without credentials.
pub const UNAUTHENTICATED_GROUP: &str = "system:unauthenticated";
/// The user of requests without credentials.
pub const ANONYMOUS_USER: &str = "system:anonymous";
/// The admin user of the kubeconfig the server writes.
pub const ADMIN_USER: &str = "kube-sim-admin";
/// Extra key of a Pod-bound token: the Pod's name.
pub const POD_NAME_EXTRA: &str = "authentication.kubernetes.io/pod-name";
/// Extra key of a Pod-bound token: the Pod's uid.
pub const POD_UID_EXTRA: &str = "authentication.kubernetes.io/pod-uid";

/// The user name of a ServiceAccount.
pub fn service_account_user(namespace: &str, name: &str) -> String {
    format!("system:serviceaccount:{namespace}:{name}")
}

/// `(namespace, name)` of the rest of a ServiceAccount user name after
/// `system:serviceaccount:`: exactly two non-empty parts, as `SplitUsername`.
pub(crate) fn split_service_account(rest: &str) -> Option<(&str, &str)> {
    let (namespace, name) = rest.split_once(':')?;
    (!namespace.is_empty() && !name.is_empty() && !name.contains(':')).then_some((namespace, name))
}

/// The groups of a ServiceAccount, `system:authenticated` included.
pub fn service_account_groups(namespace: &str) -> Vec<String> {
    vec![
        "system:serviceaccounts".to_string(),
        format!("system:serviceaccounts:{namespace}"),
        AUTHENTICATED_GROUP.to_string(),
    ]
}

/// What a ServiceAccount token was issued for.
#[derive(Debug, Clone)]
pub(crate) struct ServiceAccountToken {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    /// `(name, uid)` of the Pod the token is bound to.
    pub pod: Option<(String, String)>,
    pub expires: SystemTime,
}

#[derive(Debug, Clone)]
enum Issued {
    User(UserInfo),
    ServiceAccount(ServiceAccountToken),
}

/// What a presented token turned out to be.
#[derive(Debug, Clone)]
pub(crate) enum Presented {
    /// A token standing for this user, valid as it is.
    User(UserInfo),
    /// A ServiceAccount token: valid only while its objects still exist.
    ServiceAccount(ServiceAccountToken),
    /// Unknown or expired.
    Invalid,
}

/// Every token the server has issued.
#[derive(Debug, Default)]
pub(crate) struct Tokens {
    issued: Mutex<HashMap<String, Issued>>,
}

/// A random token: 64 hex digits from two v4 uuids (244 random bits).
fn random_token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

impl Tokens {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Issued>> {
        self.issued.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new token for `user` in `groups` (plus `system:authenticated`).
    pub fn issue_user(&self, user: &str, groups: &[&str]) -> String {
        let mut all: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
        if !all.iter().any(|g| g == AUTHENTICATED_GROUP) {
            all.push(AUTHENTICATED_GROUP.to_string());
        }
        let info = UserInfo {
            username: user.to_string(),
            uid: String::new(),
            groups: all,
            extra: BTreeMap::new(),
        };
        let token = random_token();
        self.lock().insert(token.clone(), Issued::User(info));
        token
    }

    /// A new token for a ServiceAccount, valid for `lifetime`.
    pub fn issue_service_account(
        &self,
        mut token: ServiceAccountToken,
        lifetime: Duration,
    ) -> String {
        token.expires = SystemTime::now() + lifetime;
        let value = random_token();
        self.lock()
            .insert(value.clone(), Issued::ServiceAccount(token));
        value
    }

    /// What `token` stands for now.
    pub fn lookup(&self, token: &str) -> Presented {
        match self.lock().get(token) {
            None => Presented::Invalid,
            Some(Issued::User(user)) => Presented::User(user.clone()),
            Some(Issued::ServiceAccount(sa)) if sa.expires <= SystemTime::now() => {
                Presented::Invalid
            }
            Some(Issued::ServiceAccount(sa)) => Presented::ServiceAccount(sa.clone()),
        }
    }
}

impl ServiceAccountToken {
    /// The user a valid token authenticates as.
    pub fn user(&self) -> UserInfo {
        let mut extra = BTreeMap::new();
        if let Some((pod, uid)) = &self.pod {
            extra.insert(POD_NAME_EXTRA.to_string(), vec![pod.clone()]);
            extra.insert(POD_UID_EXTRA.to_string(), vec![uid.clone()]);
        }
        UserInfo {
            username: service_account_user(&self.namespace, &self.name),
            uid: self.uid.clone(),
            groups: service_account_groups(&self.namespace),
            extra,
        }
    }
}
