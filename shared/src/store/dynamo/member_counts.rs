//! The console's member counts: one query over the client's `USER#` items that returns only the
//! four attributes a count needs. It reads (and is billed for) every member item, as listing them
//! would, but transfers and decodes a few bytes per member instead of whole members (groups,
//! attributes, the link and its sealed tokens).

use std::collections::BTreeMap;
use std::ops::ControlFlow;

use serde::de::IgnoredAny;
use serde::Deserialize;

use super::items::Item;
use super::keys;
use super::{DynamoStore, Query};
use crate::domain::{LinkStatus, MemberCounts};
use crate::store::{StoreError, StoreResult};

/// What a count reads of a member item (see `items::MemberData`).
#[derive(Deserialize)]
struct Standing {
    #[serde(default)]
    link_status: Option<LinkStatus>,
    #[serde(default)]
    pending: bool,
    #[serde(default)]
    last_error: Option<IgnoredAny>,
    #[serde(default)]
    unlinking: BTreeMap<String, IgnoredAny>,
}

impl Standing {
    /// As [`MemberCounts::add`] counts a member.
    fn add_to(&self, counts: &mut MemberCounts) {
        counts.total += 1;
        match self.link_status {
            Some(LinkStatus::Active) => counts.linked += 1,
            Some(LinkStatus::Left) => counts.left += 1,
            Some(LinkStatus::Revoked) => counts.revoked += 1,
            None => {}
        }
        counts.pending += u64::from(self.pending);
        counts.errors += u64::from(self.last_error.is_some());
        counts.unlinking += u64::from(!self.unlinking.is_empty());
    }
}

pub(super) async fn count_members(store: &DynamoStore, client: &str) -> StoreResult<MemberCounts> {
    let query = Query::partition(keys::client_pk(client), keys::USER_PREFIX).project(&[
        "link_status",
        "pending",
        "last_error",
        "unlinking",
    ]);
    let mut counts = MemberCounts::default();
    store
        .query_pages(&query, |items| {
            for item in items {
                decode(item)?.add_to(&mut counts);
            }
            Ok(ControlFlow::Continue(()))
        })
        .await?;
    Ok(counts)
}

fn decode(item: Item) -> StoreResult<Standing> {
    serde_dynamo::from_item(item)
        .map_err(|_| StoreError::Backend("cannot decode a stored member item".into()))
}
