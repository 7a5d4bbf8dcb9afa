//! `ApiTokens`: scoped API tokens, the `api_tokens` table (looked up by the token's SHA-256).

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};

use super::{from_json, to_json, SqliteStore};
use crate::domain::ApiToken;
use crate::store::{ApiTokens, StoreResult};

#[async_trait]
impl ApiTokens for SqliteStore {
    async fn put_api_token(&self, token: &ApiToken) -> StoreResult<()> {
        let token = token.clone();
        self.run(move |c| put(c, &token)).await
    }

    async fn find_api_token(&self, token_sha256: &str) -> StoreResult<Option<ApiToken>> {
        let hash = token_sha256.to_owned();
        self.run(move |c| find(c, &hash)).await
    }

    async fn list_api_tokens(&self) -> StoreResult<Vec<ApiToken>> {
        self.run(list).await
    }

    async fn delete_api_token(&self, id: &str) -> StoreResult<bool> {
        let id = id.to_owned();
        self.run(move |c| delete(c, &id)).await
    }
}

fn put(conn: &Connection, token: &ApiToken) -> StoreResult<()> {
    conn.execute(
        "INSERT INTO api_tokens (id, token_sha256, created_at, token) VALUES (?1, ?2, ?3, ?4)",
        params![
            token.id,
            token.token_sha256,
            token.created_at,
            to_json(token)?
        ],
    )?;
    Ok(())
}

fn find(conn: &Connection, hash: &str) -> StoreResult<Option<ApiToken>> {
    Ok(conn
        .prepare_cached("SELECT token FROM api_tokens WHERE token_sha256 = ?1")?
        .query_row([hash], |r| from_json(r, 0))
        .optional()?)
}

fn list(conn: &mut Connection) -> StoreResult<Vec<ApiToken>> {
    let mut stmt = conn.prepare_cached("SELECT token FROM api_tokens ORDER BY created_at, id")?;
    let tokens = stmt
        .query_map([], |r| from_json(r, 0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(tokens)
}

fn delete(conn: &Connection, id: &str) -> StoreResult<bool> {
    Ok(conn.execute("DELETE FROM api_tokens WHERE id = ?1", [id])? == 1)
}
