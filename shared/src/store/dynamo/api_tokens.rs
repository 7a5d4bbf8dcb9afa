//! `ApiTokens`: scoped API tokens, one `APITOKEN#<sha256>` item each (found by the hash on every
//! request), listed through `GSI1` = `APITOKENS`.

use async_trait::async_trait;

use super::expr::Expr;
use super::items::{self, Keyed};
use super::keys::{self, PK};
use super::{backend, put_if, DynamoStore, Query};
use crate::domain::ApiToken;
use crate::store::{ApiTokens, StoreError, StoreResult};

#[async_trait]
impl ApiTokens for DynamoStore {
    async fn put_api_token(&self, token: &ApiToken) -> StoreResult<()> {
        let item = Keyed::new(
            keys::api_token_pk(&token.token_sha256),
            keys::API_TOKEN.to_owned(),
            items::API_TOKEN,
            token,
        )
        .gsi1(
            keys::API_TOKENS.to_owned(),
            format!("{}#{}", keys::sortable(token.created_at), token.id),
        )
        .to_item()?;
        let mut expr = Expr::new();
        let condition = format!("attribute_not_exists({})", expr.name(PK));
        if put_if(self, item, condition, &expr).await? {
            Ok(())
        } else {
            Err(StoreError::Backend(
                "an API token with this hash exists".into(),
            ))
        }
    }

    async fn find_api_token(&self, token_sha256: &str) -> StoreResult<Option<ApiToken>> {
        self.get(items::key(
            keys::api_token_pk(token_sha256),
            keys::API_TOKEN,
        ))
        .await?
        .map(|item| items::decode::<ApiToken>(item, items::API_TOKEN))
        .transpose()
    }

    async fn list_api_tokens(&self) -> StoreResult<Vec<ApiToken>> {
        let query = Query::gsi1(keys::API_TOKENS.to_owned(), "");
        let (found, _) = self.query(&query, None, None).await?;
        found
            .into_iter()
            .map(|item| items::decode::<ApiToken>(item, items::API_TOKEN))
            .collect()
    }

    async fn delete_api_token(&self, id: &str) -> StoreResult<bool> {
        // Tokens are few: the listing finds the one to delete by its id.
        let Some(token) = self
            .list_api_tokens()
            .await?
            .into_iter()
            .find(|t| t.id == id)
        else {
            return Ok(false);
        };
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(items::key(
                keys::api_token_pk(&token.token_sha256),
                keys::API_TOKEN,
            )))
            .send()
            .await
            .map_err(|e| backend("DeleteItem", &e))?;
        Ok(true)
    }
}
