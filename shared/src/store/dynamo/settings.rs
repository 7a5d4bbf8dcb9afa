//! `Settings`: deployment-wide settings, one `SETTING#<key>` item each.

use async_trait::async_trait;

use super::expr::Expr;
use super::items::{self, Keyed, SettingData};
use super::keys::{self, PK};
use super::{put_if, DynamoStore};
use crate::store::{Settings, StoreResult};

#[async_trait]
impl Settings for DynamoStore {
    async fn get_setting(&self, key: &str) -> StoreResult<Option<String>> {
        get_setting(self, key).await
    }

    async fn put_setting_if_absent(&self, key: &str, value: &str) -> StoreResult<bool> {
        put_setting_if_absent(self, key, value).await
    }
}

async fn get_setting(store: &DynamoStore, key: &str) -> StoreResult<Option<String>> {
    Ok(store
        .get(items::key(keys::setting_pk(key), keys::SETTING))
        .await?
        .map(|item| items::decode::<SettingData>(item, items::SETTING))
        .transpose()?
        .map(|setting| setting.value))
}

async fn put_setting_if_absent(store: &DynamoStore, key: &str, value: &str) -> StoreResult<bool> {
    let item = Keyed::new(
        keys::setting_pk(key),
        keys::SETTING.to_owned(),
        items::SETTING,
        SettingData {
            key: key.to_owned(),
            value: value.to_owned(),
        },
    )
    .to_item()?;
    let mut expr = Expr::new();
    let condition = format!("attribute_not_exists({})", expr.name(PK));
    put_if(store, item, condition, &expr).await
}
