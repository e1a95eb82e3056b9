//! Who the tenant's queries run as, in PostgreSQL's terms: `session_user` / `current_user` is
//! the principal, and `pg_roles` lists the tenant's own principals (logins, no privileges
//! beyond reading their grants) and no one else's.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{ColumnarValue, ScalarUDF, Volatility, create_udf};
use datafusion_pg_catalog::pg_catalog::context::{PgCatalogContextProvider, Role};

/// `pg_roles` of one tenant.
#[derive(Debug, Clone)]
pub(crate) struct TenantRoles {
    users: Arc<Vec<String>>,
}

impl TenantRoles {
    pub fn new(users: Vec<String>) -> Self {
        Self {
            users: Arc::new(users),
        }
    }
}

#[async_trait]
impl PgCatalogContextProvider for TenantRoles {
    async fn roles(&self) -> Vec<String> {
        self.users.to_vec()
    }

    async fn role(&self, name: &str) -> Option<Role> {
        self.users
            .iter()
            .find(|user| *user == name)
            .map(|user| Role {
                name: user.clone(),
                is_superuser: false,
                can_login: true,
                can_create_db: false,
                can_create_role: false,
                can_create_user: false,
                can_replication: false,
                grants: Vec::new(),
                inherited_roles: Vec::new(),
            })
    }
}

/// `session_user` (what `current_user` and `user` also read) for one query: its principal.
pub(crate) fn session_user_udf(user: &str) -> ScalarUDF {
    let user = user.to_owned();
    create_udf(
        "session_user",
        vec![],
        DataType::Utf8,
        Volatility::Stable,
        Arc::new(move |_| Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(user.clone()))))),
    )
}
