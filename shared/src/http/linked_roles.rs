//! `/clients/{client}/linked-roles`: the client's Linked Roles metadata (operators only: a
//! site token's allow-list does not name it).

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::app::AppState;
use crate::domain::linked_roles::{
    from_discord_type, Comparison, MetadataField, MetadataSource, ValueKind,
};
use crate::domain::LinkedRoles;
use crate::service::linked_roles as svc;
pub use crate::service::linked_roles::LinkedRolesView;

use super::error::{ApiError, ApiResult, Problem};
use super::extract::{ApiJson, ApiPath};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkedRolesInput {
    /// On: the link flow asks for `role_connections.write` and members' metadata is pushed.
    pub enabled: bool,
    /// Shown by Discord beside the connection on the member's profile (1–50 characters).
    pub platform_name: String,
    /// The site attribute Discord shows as the member's name on the connection (e.g.
    /// `username`); the site user id when absent or the member lacks it.
    #[serde(default)]
    pub username_attribute: Option<String>,
    /// At most 5 records (Discord's limit).
    pub metadata: Vec<MetadataInput>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MetadataInput {
    /// `a-z0-9_`, 1–50 characters, unique.
    pub key: String,
    pub name: String,
    pub description: String,
    #[serde(rename = "type")]
    pub kind: ValueKind,
    /// `less_than_or_equal`, `greater_than_or_equal`, `equal`, `not_equal`, or Discord's type
    /// number (1–8, matching `type`). Default: `equal` for a boolean, `greater_than_or_equal` for
    /// an integer, `less_than_or_equal` for a datetime.
    #[serde(default)]
    pub comparison: Option<ComparisonInput>,
    /// `{"group": "officers"}` (boolean) or `{"attribute": "joined_at"}` (integer, datetime).
    pub source: MetadataSource,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum ComparisonInput {
    Number(u64),
    Name(String),
}

impl LinkedRolesInput {
    fn into_config(self) -> Result<LinkedRoles, ApiError> {
        let metadata = self
            .metadata
            .into_iter()
            .enumerate()
            .map(|(i, m)| {
                let field = format!("metadata[{i}].comparison");
                let comparison = match m.comparison {
                    None => m.kind.default_comparison(),
                    Some(ComparisonInput::Name(name)) => Comparison::from_name(&name)
                        .ok_or_else(|| {
                            ApiError::invalid(
                                &field,
                                "must be less_than_or_equal, greater_than_or_equal, equal or not_equal",
                            )
                        })?,
                    Some(ComparisonInput::Number(n)) => match from_discord_type(n) {
                        Some((kind, comparison)) if kind == m.kind => comparison,
                        _ => {
                            return Err(ApiError::invalid(
                                &field,
                                "must be a Discord metadata type (1-8) of the record's type",
                            ))
                        }
                    },
                };
                Ok(MetadataField {
                    key: m.key,
                    name: m.name,
                    description: m.description,
                    kind: m.kind,
                    comparison,
                    source: m.source,
                })
            })
            .collect::<Result<_, ApiError>>()?;
        Ok(LinkedRoles {
            enabled: self.enabled,
            platform_name: self.platform_name,
            username_attribute: self.username_attribute,
            metadata,
        })
    }
}

#[utoipa::path(put, path = "/clients/{client}/linked-roles", tag = "linked-roles", request_body = LinkedRolesInput,
    params(("client" = String, Path)),
    responses((status = 200, body = LinkedRolesView), (status = 404, body = Problem), (status = 422, body = Problem), (status = 502, body = Problem)))]
pub async fn put_linked_roles(
    State(app): State<AppState>,
    ApiPath(client): ApiPath<String>,
    ApiJson(input): ApiJson<LinkedRolesInput>,
) -> ApiResult<Json<LinkedRolesView>> {
    let config = input.into_config()?;
    Ok(Json(
        svc::save_linked_roles(&app, &client, config, "admin").await?,
    ))
}

#[utoipa::path(get, path = "/clients/{client}/linked-roles", tag = "linked-roles",
    params(("client" = String, Path)),
    responses((status = 200, body = LinkedRolesView), (status = 404, body = Problem), (status = 502, body = Problem)))]
pub async fn get_linked_roles(
    State(app): State<AppState>,
    ApiPath(client): ApiPath<String>,
) -> ApiResult<Json<LinkedRolesView>> {
    Ok(Json(svc::linked_roles(&app, &client).await?))
}
